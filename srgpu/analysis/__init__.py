"""After the run: predictor selection, explanation, applicability, model comparison, report."""

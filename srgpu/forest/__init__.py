"""Training engines and inference engines behind one small protocol.

* Training (:mod:`srgpu.forest.train`): ``fit_forest(X, y, *, params, seed)`` returns a fitted
  scikit-learn ``RandomForestRegressor`` (CPU) — the cuML trainer (:mod:`srgpu.forest.cuml_train`)
  returns an object converted to the same form.
* Inference (:mod:`srgpu.forest.protocol`): an :class:`InferenceEngine` compiles a *batch* of
  fitted forests once (one per replicate) into a :class:`CompiledForests`, whose ``predict(X)``
  returns the forest-mean prediction of every replicate, shape ``(n_replicates, n_rows)``.
"""

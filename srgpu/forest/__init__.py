"""Training engines and inference engines behind one small protocol.

* Training (:mod:`srgpu.forest.train`): ``fit_forest(X, y, *, forest, seed)`` grows a forest
  on CPU, by srgpu's numba growers (:mod:`srgpu.forest.numba_train`, default; a
  :class:`~srgpu.forest.grown.GrownForest` of flat arrays that behaves as a fitted forest) or
  scikit-learn (a ``RandomForestRegressor``): the same trees (bit for bit without ties between
  distinct rows, or with ``trainer="numba-exact"``; up to rounding on tied predictors
  otherwise). The cuML trainer (:mod:`srgpu.forest.cuml_train`) returns an object converted to
  scikit-learn's form.
* Inference (:mod:`srgpu.forest.protocol`): an :class:`InferenceEngine` compiles a *batch* of
  fitted forests once (one per replicate) into a :class:`CompiledForests`, whose ``predict(X)``
  returns the forest-mean prediction of every replicate, shape ``(n_replicates, n_rows)``.
"""

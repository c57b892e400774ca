"""Tree-ensemble kernels compiled with numba: batch prediction and fast TreeSHAP.

- :mod:`~propensity.kernels.trees` — boosters' trees as records and their split rules as arrays;
- :mod:`~propensity.kernels.predict` — :class:`FastTreePredictor`, the batch-scoring kernel
  (bit-exact margins of LightGBM, and XGBoost through the walk);
- :mod:`~propensity.kernels.shap` — :class:`FastTreeShap` (exact TreeSHAP) and
  :class:`ForestPathAttribution` (a random forest's additive path attribution), for reasons.

numba is a core dependency; it is imported when a kernel first runs, never by importing
:mod:`propensity`.
"""

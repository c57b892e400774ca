"""The application layer: one function per job, between the stages and the edges.

The CLI, the HTTP service, the dashboard and the stream scorer call these and never each other;
the stages (validation, features, training, evaluation, bundle) never import them.

- :mod:`~propensity.workflows.tables` — train on a labelled table (:func:`train`), and the
  ending every training shares (bundle, outputs, MLflow);
- :mod:`~propensity.workflows.events` — features, training and customers from an event log;
- :mod:`~propensity.workflows.scoring` — the one chunked batch-scoring loop and its row sources;
- :mod:`~propensity.workflows.spark` — that loop on Spark's executors (``mapInPandas``, the bundle
  broadcast once and verified on each executor);
- :mod:`~propensity.workflows.evaluation` — evaluate a model on new labelled rows.

Importing this package imports none of them; name the module you need.
"""

"""Event and order logs → validated canonical events → point-in-time features and labels.

Modules, in the order data flows through them:

- :mod:`~propensity.events.mapping` — the canonical event schema and the mapping onto it;
- :mod:`~propensity.events.engine` — DuckDB (default) and Spark, both through Ibis;
- :mod:`~propensity.events.validate` — validation, quarantine, sessions → :class:`EventLog`;
- :mod:`~propensity.events.features` — the feature registry and point-in-time features;
- :mod:`~propensity.events.labels` — labels, eligibility, rolling cutoffs, the training set;
- :mod:`~propensity.events.workflow` — features/train/score from a log (behind the CLI).

Nothing here is imported by ``import propensity``; Ibis is imported when an engine starts.
"""

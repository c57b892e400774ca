"""Event and order logs → validated canonical events.

- :mod:`~propensity.events.mapping` — the canonical event schema and the mapping onto it;
- :mod:`~propensity.events.validate` — validation, quarantine, sessions → :class:`EventLog`.

What comes next lives in its own stage: :mod:`propensity.features` (point-in-time features,
labels and cutoffs), run by an engine from :mod:`propensity.engines`; the jobs that string them
together (features, training and scoring from a log) are in :mod:`propensity.workflows.events`.

Nothing here is imported by ``import propensity``; Ibis is imported when an engine starts.
"""

"""The stream scorer: brokers (one small interface) feeding :class:`propensity.workflows.live.LiveScorer`."""

"""The scoring service: a FastAPI app generated from a model bundle.

>>> from propensity.serving import create_app  # doctest: +SKIP
>>> app = create_app("models/shop")            # doctest: +SKIP

Needs the ``serve`` extra (fastapi, uvicorn, prometheus-client, orjson). Imports only the
bundle, pipeline, schema and manifest side of propensity — never the training code.
"""

from __future__ import annotations

from propensity.serving.app import create_app
from propensity.serving.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]

"""The ``propensity`` command line: thin wrappers over the public API.

Errors a user can fix print one line on stderr and exit with code 2 (no traceback);
set ``PROPENSITY_DEBUG=1`` to see tracebacks. Each area registers its commands from its
own module below; this module only assembles them.
"""

from __future__ import annotations

from typing import Annotated

import typer

import propensity.cli.models  # noqa: F401  (registers models list|show|promote|register, tracking ui|info)
from propensity.cli import (
    clv,  # noqa: F401  (registers clv)
    core,  # noqa: F401  (registers train, score, roles, info, demo, datasets)
    dashboard,  # noqa: F401  (registers dashboard, analyze)
    events,  # noqa: F401  (registers validate, features, generate)
    monitor,  # noqa: F401  (registers monitor)
    report,  # noqa: F401  (registers evaluate, report-shop)
    serve,  # noqa: F401  (registers serve, api-key)
    stream,  # noqa: F401  (registers stream, replay)
)
from propensity.cli._common import app, out

__all__ = ["app", "main"]


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from propensity import __version__

        out.print(f"propensity {__version__}", highlight=False)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())
        raise typer.Exit()


def main() -> None:
    """Entry point of the ``propensity`` script."""
    app(prog_name="propensity")

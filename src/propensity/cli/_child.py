"""Run a server child (Streamlit) under supervision: signals forwarded, nothing left behind.

``propensity dashboard`` starts Streamlit as a child process. Without supervision, SIGTERM to
the parent (``kill``, a container stop, systemd) ended only the parent and left Streamlit running,
orphaned, holding the port. :func:`run_supervised` forwards SIGTERM, SIGINT and SIGHUP to the
child, waits for it, and if the child has not exited ``grace`` seconds after the first signal,
kills it; it returns only once the child is gone, with the child's exit code.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import FrameType

__all__ = ["FORWARDED", "run_supervised"]

#: The signals passed on to the child.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_supervised(command: Sequence[str], env: Mapping[str, str], *, grace: float = 15.0) -> int:
    """Run ``command`` until it exits; forward stop signals to it; kill it ``grace`` s after one.

    A signal that stopped the child is reported as exit code 0 (a requested stop is a clean one).
    """
    proc = subprocess.Popen(list(command), env=dict(env))
    signalled: list[float] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        signalled.append(time.monotonic())
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if signalled and time.monotonic() - signalled[0] > grace:
                    proc.kill()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc.poll() is None:  # an exception in this loop: never leave the child behind
            proc.kill()
            proc.wait()
    return (
        0
        if signalled and code in (0, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP, -signal.SIGKILL)
        else code
    )

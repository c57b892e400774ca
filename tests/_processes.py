"""Process helpers of the supervision tests (Linux /proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, …), read from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        tasks = Path(f"/proc/{parent}/task")
        if not tasks.exists():
            continue
        for task in tasks.iterdir():
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def alive(pid: int) -> bool:
    """Whether a process exists (a zombie counts as gone: it holds no port and runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return state != "Z"


def survivors(pids: list[int], wait: float = 5.0) -> list[int]:
    """Those of ``pids`` still running after up to ``wait`` seconds.

    multiprocessing's resource tracker (a child of uvicorn's supervisor) ends when its pipe from
    the exited parent closes, a few milliseconds after the parent: it gets that long.
    """
    deadline = time.monotonic() + wait
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def port_is_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:``port`` (SO_REUSEADDR, as servers set it: TIME_WAIT is not a holder)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM ``proc`` if it still runs; SIGKILL it if it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

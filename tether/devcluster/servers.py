"""A loopback server the dev tooling runs as a child process (Gitea, the OCI registry): started
in its own session with its output appended to a log, stopped with its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def start_server(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Run ``argv`` in ``cwd`` with exactly ``env``, stdout and stderr appended to ``log_path``."""
    with log_path.open("ab") as output:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_server(process: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM the server's process group, SIGKILL after ``grace`` seconds; nothing if it ended."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

"""Running a render tool (helm, kustomize) as a subprocess under a time and a memory limit.

    run_limited(tool, arguments, timeout, cwd, environment, tidy) -> Finished

The memory limit is the tool's address space (``RLIMIT_AS``), set by ``/bin/sh``'s ``ulimit -v``
just before the tool is executed; when the time limit runs out the process is killed. A run
stopped by either limit, or a binary that cannot be run, raises ``Stopped`` saying which
(``Cause``): each renderer words its own message (the tool, its ``RenderSettings`` field and what
to do). Any other exit, failed or not, is the caller's to judge.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

_OUT_OF_MEMORY = re.compile(r"out of memory|cannot allocate memory", re.IGNORECASE)
_SET_LIMIT_THEN_EXEC = 'ulimit -v "$1" && shift && exec "$@"'
_CANNOT_EXECUTE = (126, 127)  # /bin/sh's exit when its exec fails


class Cause(Enum):
    """Why a tool was stopped."""

    TIME = "time limit"
    MEMORY = "memory limit"
    CANNOT_RUN = "cannot be run"


class Stopped(Exception):
    """The tool hit a limit (``cause``), or its binary cannot be run (``reason`` says why)."""

    def __init__(self, cause: Cause, reason: str = "") -> None:
        super().__init__(f"{cause.value}: {reason}" if reason else cause.value)
        self.cause = cause
        self.reason = reason


@dataclass(frozen=True)
class Tool:
    """A binary to run: ``name`` (as ``/bin/sh`` reports it), its path and its memory limit in
    bytes of address space."""

    name: str
    binary: Path
    memory: int


@dataclass(frozen=True)
class Finished:
    """A run that ended by itself: its exit code, its output and its tidied error output."""

    returncode: int
    stdout: str
    stderr: str


def run_limited(
    tool: Tool,
    arguments: Sequence[str],
    *,
    timeout: float,
    cwd: str,
    environment: Mapping[str, str],
    tidy: Callable[[str], str],
    stdin: bytes | None = None,
) -> Finished:
    """``tool`` run with ``arguments`` in ``cwd`` with only ``environment``, fed ``stdin`` (or
    nothing), killed after ``timeout`` seconds. Its standard error is passed through ``tidy``
    (which must keep the tool's own words) before it is judged. Raises ``Stopped``."""
    kilobytes = str(max(tool.memory // 1024, 1))
    command = ["/bin/sh", "-c", _SET_LIMIT_THEN_EXEC, tool.name, kilobytes, str(tool.binary)]
    try:
        completed = subprocess.run(
            [*command, *arguments],
            cwd=cwd,
            env=dict(environment),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL if stdin is None else None,
            input=stdin,
        )
    except subprocess.TimeoutExpired as exc:
        raise Stopped(Cause.TIME) from exc
    except OSError as exc:
        raise Stopped(Cause.CANNOT_RUN, exc.strerror or str(exc)) from exc
    stderr = tidy(completed.stderr.decode("utf-8", "replace"))
    if completed.returncode != 0 and _OUT_OF_MEMORY.search(stderr):
        raise Stopped(Cause.MEMORY)
    if completed.returncode in _CANNOT_EXECUTE and "exec:" in stderr:
        raise Stopped(Cause.CANNOT_RUN, stderr.rpartition(": ")[2] or "cannot execute")
    return Finished(completed.returncode, completed.stdout.decode("utf-8", "replace"), stderr)

"""Where Tether keeps its files on this machine: the one place that decides it.

``$TETHER_CACHE_DIR`` when set, else ``${XDG_CACHE_HOME:-~/.cache}/tether``. Below it: ``bin/``
(control-plane binaries), ``git/`` (source mirrors and artifacts), ``clusters/`` (dev clusters).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    configured = os.environ.get("TETHER_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tether"

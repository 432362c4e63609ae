"""Who is acting: the name the audit trail and the CLI's requests record for this process."""

from __future__ import annotations

import getpass
import os
import socket


def default_actor() -> str:
    """Who is running this process, as ``$USER@hostname`` (e.g. ``alice@laptop``)."""
    user = os.environ.get("USER")
    if not user:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name in the environment nor in the passwd file
            user = f"uid-{os.getuid()}"
    return f"{user}@{socket.gethostname()}"

"""Collecting every problem of one render, so a user can fix them all in one go.

Each part of the render adds plain one-line messages (``file:line: what is wrong, what to do``)
and keeps going; the render raises a single ``RenderError`` listing them at the end.
"""

from __future__ import annotations

from tether.errors import RenderError

SHOWN = 20
"""At most this many problems are listed in one error; the rest are counted."""


class Problems:
    """An ordered list of one-line problem messages."""

    def __init__(self) -> None:
        self._messages: list[str] = []

    def add(self, message: str) -> None:
        self._messages.append(message)

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def messages(self) -> list[str]:
        return list(self._messages)

    def raise_if_any(self, what: str) -> None:
        """Raise one ``RenderError`` about ``what`` (e.g. ``apps/web``) listing every problem."""
        if not self._messages:
            return
        count = len(self._messages)
        if count == 1:
            raise RenderError(f"cannot render {what}: {self._messages[0]}")
        lines = [f"cannot render {what}: {count} problems"]
        lines += [f"  {message}" for message in self._messages[:SHOWN]]
        if count > SHOWN:
            lines.append(f"  ... and {count - SHOWN} more")
        raise RenderError("\n".join(lines))

"""Writing YAML for people and kubectl: block style, keys in the order given, no anchors.

PyYAML's dumper writes an object that appears twice (the install's CRDs share schema parts) once
with an anchor (``&id001``) and then as an alias (``*id001``). That is valid YAML, but a reviewer
reading one object must then find another, and tools that edit one copy change both. Here every
occurrence is written out in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _PlainDumper(yaml.SafeDumper):
    """``SafeDumper`` that never writes an anchor or an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_all(documents: Iterable[Any]) -> str:
    """``documents`` as one multi-document YAML text (``---`` between them), with no anchors."""
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False)

"""Pure comparison of desired and live objects: what the server sets is stripped, Secret values
are masked, and a unified diff is produced for people.

The desired side is always the server's *dry-run* answer for Tether's manifest, never the raw
manifest, so defaulted fields (``spec.revisionHistoryLimit``, ``protocol: TCP``, …) appear on
both sides and never show as a difference.
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import json
from typing import Any

import yaml

from tether.core.objects import ObjectRef

FIELD_MANAGER = "tether"
SERVER_SET_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
)
MASK = "*** (masked)"
MASK_CHANGED = "*** (masked, changed)"


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without status and without metadata the server sets by itself."""
    stripped = {k: v for k, v in obj.items() if k != "status"}
    metadata = {
        k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_SET_METADATA
    }
    stripped["metadata"] = metadata
    return stripped


def owned_fields(obj: dict[str, Any], manager: str = FIELD_MANAGER) -> Any:
    """The field set ``manager`` holds through server-side apply (None when it holds none)."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return entry.get("fieldsV1")
    return None


def in_sync(dry_run: dict[str, Any], live: dict[str, Any]) -> bool:
    """True when applying would change nothing: same content, and Tether owns the same fields."""
    if strip_server_fields(dry_run) != strip_server_fields(live):
        return False
    return bool(owned_fields(dry_run) == owned_fields(live))


def is_secret(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def mask_secrets(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[Any, Any]:
    """Both sides with Secret values replaced by a mask that still shows *which* keys changed."""
    if not (is_secret(before or {}) or is_secret(after or {})):
        return before, after
    before, after = copy.deepcopy(before), copy.deepcopy(after)
    for field in ("data", "stringData"):
        old = (before or {}).get(field) or {}
        new = (after or {}).get(field) or {}
        for key in set(old) | set(new):
            changed = key in old and key in new and old[key] != new[key]
            mask = MASK_CHANGED if changed else MASK
            if key in old:
                old[key] = MASK
            if key in new:
                new[key] = mask
    _drop_last_applied(before)
    _drop_last_applied(after)
    return before, after


def _drop_last_applied(obj: dict[str, Any] | None) -> None:
    """kubectl's client-side apply annotation holds a full copy of the Secret: never show it."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = MASK


def to_yaml(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.safe_dump(json.loads(json.dumps(obj)), sort_keys=True, default_flow_style=False)


def mask_paths(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    paths: tuple[tuple[str | int, ...], ...],
) -> tuple[Any, Any]:
    """Both sides with the value at each of ``paths`` masked (the paths of values decrypted
    from Git: what the live object holds there may be an earlier secret)."""
    if not paths:
        return before, after
    before, after = copy.deepcopy(before), copy.deepcopy(after)
    for path in paths:
        old, new = _at(before, path), _at(after, path)
        changed = old is not None and new is not None and old[0] != new[0]
        _put(before, path, MASK)
        _put(after, path, MASK_CHANGED if changed else MASK)
    return before, after


def _at(obj: Any, path: tuple[str | int, ...]) -> tuple[Any] | None:
    """``(value,)`` at ``path`` in ``obj``, or None when there is nothing there."""
    for step in path:
        found = isinstance(obj, dict) and isinstance(step, str) and step in obj
        found = found or (isinstance(obj, list) and isinstance(step, int) and 0 <= step < len(obj))
        if not found:
            return None
        obj = obj[step]
    return (obj,)


def _put(obj: Any, path: tuple[str | int, ...], value: str) -> None:
    """Replace the value at ``path`` in ``obj`` when there is one."""
    parent = _at(obj, path[:-1]) if path else None
    if parent is not None and _at(obj, path) is not None:
        parent[0][path[-1]] = value


def unified_diff(
    ref: ObjectRef,
    live: dict[str, Any] | None,
    desired: dict[str, Any] | None,
    hidden: tuple[tuple[str | int, ...], ...] = (),
) -> str:
    """A unified diff from live to desired (either may be None), server fields stripped,
    Secret values and the values at ``hidden`` paths masked. Empty when they are equal."""
    live_view = strip_server_fields(live) if live is not None else None
    desired_view = strip_server_fields(desired) if desired is not None else None
    live_view, desired_view = mask_secrets(live_view, desired_view)
    live_view, desired_view = mask_paths(live_view, desired_view, hidden)
    live_view, desired_view = _mask_digests(live_view, desired_view)
    lines = difflib.unified_diff(
        to_yaml(live_view).splitlines(keepends=True),
        to_yaml(desired_view).splitlines(keepends=True),
        fromfile=f"live/{ref}" if live is not None else "/dev/null",
        tofile=f"desired/{ref}" if desired is not None else "/dev/null",
    )
    return "".join(lines)


DIGEST_ANNOTATION = "tether.dev/applied-digest"


def _mask_digests(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both sides with the digest shown only as changed or not: it is Tether's bookkeeping,
    not content (and a digest of values printed in CI logs invites guessing them offline)."""
    stamps = [_annotations(v).get(DIGEST_ANNOTATION) for v in (before, after)]
    changed = before is not None and after is not None and stamps[0] != stamps[1]
    return (
        _with_digest(before, MASK),
        _with_digest(after, MASK_CHANGED if changed else MASK),
    )


def _annotations(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _with_digest(obj: dict[str, Any] | None, shown: str) -> dict[str, Any] | None:
    """A copy of ``obj`` whose digest annotation reads ``shown`` (``obj`` when it has none)."""
    annotations = _annotations(obj)
    if obj is None or DIGEST_ANNOTATION not in annotations:
        return obj
    metadata = {**obj["metadata"], "annotations": {**annotations, DIGEST_ANNOTATION: shown}}
    return {**obj, "metadata": metadata}


def digest(body: dict[str, Any], *, blind: bool = False) -> str:
    """A stable digest of a desired manifest (what Tether applies), for the no-op fast path.

    ``blind`` (Secrets and objects with decrypted values): a digest of the manifest's *shape*
    only, each value replaced by its type, so that the annotation, which anyone who may list
    the object's metadata or read a diff sees, says nothing about the values; the fast path
    compares every value with the live object anyway (``provably_unchanged``). See
    docs/decisions/0015-leaks-and-clean-failures.md.
    """
    hashed = _shape(body) if blind else body
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _shape(value: Any) -> Any:
    """``value`` with every scalar replaced by the name of its type (keys and lengths kept)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def contains(desired: Any, live: Any) -> bool:
    """True when every value ``desired`` sets is present and equal in ``live``.

    Maps may have extra keys in ``live`` (server defaults, other managers' fields); lists must
    have the same length and match item by item; scalars must be equal. A ``None`` in desired
    (a field removal) never matches, so such objects take the dry-run path.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(key in live and contains(value, live[key]) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(contains(d, v) for d, v in zip(desired, live, strict=True))
    if desired is None:
        return False
    return bool(desired == live) and type(desired) is type(live)


def provably_unchanged(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """True when a server-side apply of ``desired`` would certainly change nothing.

    ``desired`` carries the digest of its own content; when ``live`` carries the same digest,
    Tether's last successful apply was this exact configuration (so it owns exactly these
    fields), and when every desired value is still in ``live``, nobody has changed them since.
    Anything else (a new digest, drift, values the server normalises) goes through the
    dry-run. See docs/decisions/0004-no-op-fast-path.md.
    """
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    wanted = ((desired.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    if not wanted or annotations.get(DIGEST_ANNOTATION) != wanted:
        return False
    if owned_fields(live) is None:
        return False
    return contains(_as_persisted({k: v for k, v in desired.items() if k != "status"}), live)


def _as_persisted(desired: dict[str, Any]) -> dict[str, Any]:
    """A Secret's write-only ``stringData`` as the ``data`` the server keeps (base64), so a
    Secret written with ``stringData`` can be proven unchanged too."""
    string_data = desired.get("stringData")
    if not is_secret(desired) or not isinstance(string_data, dict):
        return desired
    if not all(isinstance(v, str) for v in string_data.values()):
        return desired
    data = dict(desired.get("data") or {})
    data.update({k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()})
    return {**{k: v for k, v in desired.items() if k != "stringData"}, "data": data}


def drift_baseline(desired: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """What a managed object should keep looking like after a sync: ``desired`` as the server
    stored it (``as_stored``), with a Secret's ``stringData`` judged through the ``data`` keys
    the server turns it into. ``stored`` None (nothing to learn from) leaves ``desired``."""
    if stored is None:
        return desired
    if desired.get("kind") == "Secret" and desired.get("stringData"):
        folded = dict(desired.get("data") or {})
        folded.update(dict.fromkeys(desired["stringData"], ""))
        desired = {**desired, "data": folded}
    baseline: dict[str, Any] = as_stored(desired, stored)
    return baseline


def as_stored(desired: Any, stored: Any) -> Any:
    """``desired`` as the API server stores it: each value Git sets, in the server's form
    (``cpu: 1000m`` reads back as ``1``), leaving out what the server does not keep (write-only
    ``stringData``, empty lists it drops), so that drift is judged against what the server made
    of the manifest and never against its spelling. ``stored`` is the server's answer to the
    apply (or its dry-run) of ``desired``."""
    if isinstance(desired, dict):
        if not isinstance(stored, dict):
            return stored
        return {k: as_stored(v, stored[k]) for k, v in desired.items() if k in stored}
    if isinstance(desired, list):
        if isinstance(stored, list) and len(stored) == len(desired):
            return [as_stored(d, s) for d, s in zip(desired, stored, strict=True)]
        return stored
    return stored


def drifted_fields(desired: dict[str, Any], live: dict[str, Any] | None) -> list[str]:
    """Dotted paths of the values ``desired`` sets that ``live`` no longer has (``["<missing>"]``
    when the object is gone). Status and fields other managers added are never drift."""
    if live is None:
        return ["<missing>"]
    found: list[str] = []

    def walk(want: Any, have: Any, path: str) -> None:
        if isinstance(want, dict) and isinstance(have, dict):
            for key, value in want.items():
                if key in ("status", DIGEST_ANNOTATION):
                    continue
                child = f"{path}.{key}" if path else key
                if key not in have:
                    found.append(child)
                else:
                    walk(value, have[key], child)
        elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
            for index, (w, h) in enumerate(zip(want, have, strict=True)):
                walk(w, h, f"{path}[{index}]")
        elif not contains(want, have):
            found.append(path)

    walk({k: v for k, v in desired.items() if k != "status"}, live, "")
    return found

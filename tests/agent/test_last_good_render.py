"""Which render the agent keeps as an App's last good one (``tether.agent.quarantine.good_render``):
only the render applied as rendered, with no rollout in flight. A candidate's render must never
be kept, even when the status (after a lost lease) says Promoted with a candidate still set."""

from __future__ import annotations

from typing import Any

from tether.agent.quarantine import Head, good_render
from tether.core import Manifest, Revision


def deployment(image: str, name: str = "web") -> Manifest:
    template = {"spec": {"containers": [{"name": "web", "image": image}]}}
    return Manifest(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": 4, "template": template},
        }
    )


def service() -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}})


def head(applied: list[Manifest], as_rendered: bool = True) -> Head:
    rendered = [deployment("web:v2"), service()]
    revision = Revision("https://git.example/app.git", "main", "c" * 40)
    return Head(revision, rendered, "sha256:v2", as_rendered, applied)


def status(phase: str, candidate: dict[str, str] | None = None) -> dict[str, Any]:
    stable = {"revision": "a" * 40, "digest": "sha256:v1"}
    return {"delivery": {"web": {"phase": phase, "candidate": candidate, "stable": stable}}}


CANDIDATE = {"revision": "c" * 40, "digest": "sha256:v2"}


def test_a_promoted_render_applied_as_rendered_is_good() -> None:
    assert good_render(head([deployment("web:v2"), service()]), status("Promoted"))


def test_an_app_without_delivery_keeps_what_it_applied() -> None:
    assert good_render(head([deployment("web:v2"), service()]), {})


def test_promoted_with_a_candidate_still_set_is_not_good() -> None:
    """After a lost lease the status can show Promoted while the candidate runs."""
    applied = [deployment("web:v2"), service()]
    assert not good_render(head(applied), status("Promoted", CANDIDATE))


def test_a_rollout_in_flight_is_not_good() -> None:
    assert not good_render(head([deployment("web:v2"), service()]), status("Progressing"))


def test_a_render_delivery_reshaped_is_not_good() -> None:
    """Stable's template under the head's name, or a candidate beside it: not as rendered."""
    stable_kept = [deployment("web:v1"), service()]
    with_candidate = [deployment("web:v2"), deployment("web:v2", "web-canary"), service()]
    assert not good_render(head(stable_kept), status("Promoted"))
    assert not good_render(head(with_candidate), status("Promoted"))


def test_a_render_a_quarantine_held_back_is_not_good() -> None:
    applied = [deployment("web:v2"), service()]
    assert not good_render(head(applied, as_rendered=False), status("Promoted"))

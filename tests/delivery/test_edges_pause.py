"""``pause: {duration: 10}``: Argo Rollouts reads a bare number as seconds. The App's schema
takes a number or a duration string, and the model reads the number as seconds."""

from __future__ import annotations

import pytest

from tests.conftest import Kubectl
from tether.delivery.model import DeliveryError, Pause, read_delivery


def app(namespace: str, duration: str) -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: app
  delivery:
    - target: {{kind: Deployment, name: web}}
      canary:
        steps:
          - setWeight: 20
          - pause: {{duration: {duration}}}
"""


def test_the_api_server_takes_a_bare_number_of_seconds_and_the_model_reads_it(
    tether_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-f", "-", stdin=app(namespace, "10"))
    stored = kubectl.get("apps.tether.dev", "web", namespace)
    assert stored is not None
    delivery = stored["spec"]["delivery"]
    assert delivery[0]["canary"]["steps"][1] == {"pause": {"duration": 10}}
    (spec,) = read_delivery(delivery, f"{namespace}/web")
    assert spec.steps[1] == Pause(10.0)


def test_the_api_server_still_refuses_what_is_neither(
    tether_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    refused = kubectl("apply", "-f", "-", stdin=app(namespace, "ten"), check=False)
    assert refused.returncode != 0
    assert "duration" in refused.stderr
    negative = kubectl("apply", "-f", "-", stdin=app(namespace, "-5"), check=False)
    assert negative.returncode != 0


@pytest.mark.parametrize(("raw", "expected"), [(10, 10.0), ("10s", 10.0), ("1m30s", 90.0)])
def test_the_model_reads_numbers_and_durations(raw: object, expected: float) -> None:
    steps = [{"pause": {"duration": raw}}]
    (spec,) = read_delivery([{"target": {"name": "web"}, "canary": {"steps": steps}}], "ns/web")
    assert spec.steps[0] == Pause(expected)


def test_the_model_refuses_a_number_in_a_string_without_unit() -> None:
    steps = [{"pause": {"duration": "10"}}]
    with pytest.raises(DeliveryError, match=r"spec.delivery\[0\].canary.steps\[0\].pause"):
        read_delivery([{"target": {"name": "web"}, "canary": {"steps": steps}}], "ns/web")

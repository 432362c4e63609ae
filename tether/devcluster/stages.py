"""The kwok Stages that play kubelet for the dev cluster's pods, with a knob for bad versions.

kwok moves fake pods through Stages: a selector over the pod and the status it gets next. Its
built-in pod Stages make every pod Ready at once, which is what most tests want, but a delivery
test needs a *bad version*: pods that run and never become Ready, so a rollout stalls and its
health check fails, as it would with a crashing image.

``PodStages`` writes the whole set of pod Stages kwok runs (kwok drops its own pod Stages as soon
as a configuration names any): ready, complete (for Jobs), delete, and **unready**, which takes
the pods any of whose containers has an image tag in ``unready_image_tags``, or ending in
``-<one of them>``: with the default, ``web:unready`` and ``web:v2-unready`` run but stay
unready, ``web:v2`` becomes Ready. Node Stages stay kwok's own (the configuration names none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

STAGE_API_VERSION = "kwok.x-k8s.io/v1alpha1"
DEFAULT_UNREADY_IMAGE_TAGS = ("unready",)

# The last dash-separated word of each container's image tag (jq, as kwok evaluates it):
# "web:v2-unready" -> "unready", "web:unready" -> "unready", "web:v2" -> "v2".
_TAG_WORD = '.spec.containers[].image | split(":")[-1] | split("-")[-1]'

_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_NOT_STARTED = {"key": ".status.podIP", "operator": "DoesNotExist"}

_RUNNING_STATUS = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
- lastTransitionTime: {{ $now | Quote }}
  status: "%(ready)s"
  type: Ready
%(reason)s
- lastTransitionTime: {{ $now | Quote }}
  status: "%(ready)s"
  type: ContainersReady
%(reason)s
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "%(ready)s"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: %(container_ready)s
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_UNREADY_REASON = """\
  reason: ContainersNotReady
  message: "the image tag is marked unready in the dev cluster's kwok stages"\
"""

_COMPLETED_STATUS = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def _stage(name: str, selector: list[dict[str, Any]], next_: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": STAGE_API_VERSION,
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": selector},
            "next": next_,
        },
    }


@dataclass(frozen=True)
class PodStages:
    """The pod Stages of one dev cluster; ``unready_image_tags`` names the bad versions."""

    unready_image_tags: tuple[str, ...] = DEFAULT_UNREADY_IMAGE_TAGS

    def is_unready(self, image: str) -> bool:
        """Whether a pod running ``image`` stays unready (the rule the Stages encode, for
        people and tests that pick image names)."""
        tag = image.rsplit(":", 1)[-1]
        return tag.rsplit("-", 1)[-1] in self.unready_image_tags

    def documents(self) -> list[dict[str, Any]]:
        tags = list(self.unready_image_tags)
        ready = _RUNNING_STATUS % {"ready": "True", "reason": "", "container_ready": "true"}
        unready = _RUNNING_STATUS % {
            "ready": "False",
            "reason": _UNREADY_REASON,
            "container_ready": "false",
        }
        stages = [
            _stage(
                "pod-ready",
                [
                    _NOT_DELETED,
                    _NOT_STARTED,
                    {"key": _TAG_WORD, "operator": "NotIn", "values": tags},
                ],
                {"statusTemplate": ready},
            ),
            _stage(
                "pod-unready",
                [_NOT_DELETED, _NOT_STARTED, {"key": _TAG_WORD, "operator": "In", "values": tags}],
                {"statusTemplate": unready},
            ),
            _stage(
                "pod-complete",
                [
                    _NOT_DELETED,
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                    {
                        "key": ".metadata.ownerReferences[].kind",
                        "operator": "In",
                        "values": ["Job"],
                    },
                ],
                {"statusTemplate": _COMPLETED_STATUS},
            ),
            _stage(
                "pod-delete",
                [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
                {"finalizers": {"empty": True}, "delete": True},
            ),
        ]
        if not tags:  # an empty "In" is refused by kwok; with no bad tags every pod is ready
            stages = [stage for stage in stages if stage["metadata"]["name"] != "pod-unready"]
            stages[0]["spec"]["selector"]["matchExpressions"] = [_NOT_DELETED, _NOT_STARTED]
        return stages

    def configuration(self) -> str:
        """kwok's ``--config`` file: the Stages as one multi-document YAML."""
        return yaml.safe_dump_all(self.documents(), sort_keys=False)

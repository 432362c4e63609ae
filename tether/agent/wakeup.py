"""Waking GitSources after a push webhook, on whichever replica the webhook reached. The leader
triggers its source workers directly; any other replica annotates the matching GitSources with
``tether.dev/reconcile-requested-at``, which the leader's informer sees and fetches on, so no
webhook is dropped because it reached a standby or arrived during a hand-over."""

from __future__ import annotations

from datetime import UTC, datetime

from tether.agent import crds, webhooks
from tether.agent.annotations import REQUESTED_ANNOTATION
from tether.agent.specs import SourceSpec
from tether.agent.state import Fleet
from tether.cluster.client import KubeClient


def wake_local(fleet: Fleet, urls: set[str]) -> list[str]:
    """On the leader: trigger the workers of the sources whose URL was pushed to."""
    matched = [
        key for key, state in fleet.sources.items() if webhooks.normalise(state.spec.url) in urls
    ]
    for key in matched:
        fleet.sources[key].trigger.set()
    return matched


async def request_fetch(client: KubeClient, namespace: str, urls: set[str]) -> list[str]:
    """On any replica: ask the leader, through the API, to fetch the matching sources."""
    resource = await client.resource(crds.API_VERSION, "GitSource")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    matched = []
    for item in await client.list(resource, namespace):
        spec = SourceSpec.of(item)
        if webhooks.normalise(spec.url) not in urls:
            continue
        patch = {"metadata": {"annotations": {REQUESTED_ANNOTATION: stamp}}}
        await client.merge_patch(resource, spec.namespace, spec.name, patch)
        matched.append(spec.key)
    return matched

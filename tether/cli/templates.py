"""AnalysisTemplates in a path given to ``tether sync`` / ``tether diff``.

They belong to a rollout (an App's ``spec.delivery``, docs/delivery.md): the agent reads them
from the render and never applies them. The CLI knows no App, so it sets aside those the API
server does not serve (``shaping.unserved_templates``) and says so, rather than failing on
"no kind 'AnalysisTemplate'". With Argo Rollouts installed they are objects like any other.
"""

from __future__ import annotations

from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.core import Manifest, Revision
from tether.delivery.shaping import is_analysis_template, unserved_templates


class TemplatesSetAside:
    """A ``ManifestShaper`` for one CLI sync or diff; ``set_aside`` lists what it took out."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.set_aside: list[Manifest] = []

    async def __call__(self, revision: Revision, manifests: list[Manifest]) -> list[Manifest]:
        if not any(is_analysis_template(m) for m in manifests):
            return manifests
        async with KubeClient(self.connection) as client:
            served = (await client.served_apis()).api_versions
        kept, self.set_aside = unserved_templates(manifests, served)
        return kept

    def entries(self) -> list[dict[str, str]]:
        """The templates set aside, for ``--output json``."""
        return [
            {"kind": m.kind, "name": m.ref.name, "source": str(m.source)} for m in self.set_aside
        ]

    def note(self) -> str:
        """What was not applied and why ("" when nothing was set aside)."""
        if not self.set_aside:
            return ""
        names = ", ".join(f"{m.kind} {m.ref.name} ({m.source})" for m in self.set_aside)
        return (
            f"not applied: {names}. An analysis template is read by the rollout of an App's "
            "spec.delivery (docs/delivery.md), never applied"
        )

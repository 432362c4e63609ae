"""The test service as Git holds it, written once for the delivery agent tests: the Deployment
``web`` at a version, the Services in front of it, and its route through the platform's Gateway
``public`` (the Gateway itself is the platform's, not in the App)."""

from __future__ import annotations


def web_deployment(version: str, replicas: int, tag: str = "", tolerations: bool = False) -> str:
    """The Deployment ``web`` labelled ``version``, its image tagged ``tag`` (default: the
    version; a tag ending ``-unready`` keeps its pods unready, see tether/devcluster/stages.py)."""
    tolerate = "      tolerations: [{operator: Exists}]\n" if tolerations else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, version: {version}}}}}
    spec:
{tolerate}      containers: [{{name: web, image: "registry.example/web:{tag or version}"}}]
"""


def web_services(*names: str) -> str:
    """One Service per name, each selecting every ``web`` pod (delivery narrows them)."""
    return "".join(
        f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}
"""
        for name in names
    )


WEB_ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: public}]
  rules:
    - backendRefs: [{name: web-stable, port: 80}]
"""


def routed_render(version: str, tolerations: bool = False) -> str:
    """4 replicas of ``web`` behind Services ``web-stable`` and ``web-canary`` and the route."""
    return (
        web_deployment(version, 4, tolerations=tolerations)
        + web_services("web-stable", "web-canary")
        + WEB_ROUTE
    )


def blue_green_render(version: str, tag: str = "") -> str:
    """2 replicas of ``web`` behind the active Service ``web`` and the preview ``web-preview``."""
    return web_deployment(version, 2, tag) + web_services("web", "web-preview")

"""Small manifest builders for the sync tests."""

from __future__ import annotations


def configmap(name: str, **data: str) -> str:
    lines = "\n".join(f"  {k}: {v!r}" for k, v in data.items()) or "  {}"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{lines}\n"


def deployment(name: str, replicas: int = 1, image: str = "registry.example.com/app:1.0") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: main
          image: {image}
          ports:
            - containerPort: 8080
"""


def service(name: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
    - port: 80
      targetPort: 8080
"""


def secret(name: str, **string_data: str) -> str:
    lines = "\n".join(f"  {k}: {v}" for k, v in string_data.items())
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\nstringData:\n{lines}\n"


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer}}
"""

WIDGET = """apiVersion: {group}/v1
kind: Widget
metadata:
  name: gadget
spec:
  size: 3
"""

"""An app of many kinds (built-in and custom), as real platforms have: every object is small,
but each kind needs its own watch."""

from __future__ import annotations

CUSTOM_KINDS = 15

BUILT_IN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: info}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {token: not-a-real-token}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: web}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: web, image: "registry.example/web:1.0"}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: db, image: "registry.example/db:1.0"}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: agent, image: "registry.example/agent:1.0"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: "registry.example/report:1.0"}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits: [{type: Container, default: {memory: 256Mi}}]
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota}
spec:
  hard: {pods: "50"}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: external, labels: {kubernetes.io/service-name: external}}
addressType: IPv4
endpoints: [{addresses: ["192.0.2.10"]}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: app-lock}
spec: {holderIdentity: nobody}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: worker}
template:
  spec:
    containers: [{name: worker, image: "registry.example/worker:1.0"}]
"""


def crd(index: int, suffix: str) -> str:
    group = f"k{index}.{suffix}.test"
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets{index}.{group}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets{index}, singular: widget{index}, kind: Widget{index}, listKind: Widget{index}List}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def custom_resource(index: int, suffix: str, size: str = "small") -> str:
    return f"""\
apiVersion: k{index}.{suffix}.test/v1
kind: Widget{index}
metadata: {{name: widget}}
spec: {{size: {size}, index: {index}}}
"""


def many_kinds(suffix: str) -> str:
    """The whole app: 19 built-in kinds, 15 CRDs (groups made unique by ``suffix``) and one
    object of each custom kind."""
    parts = [BUILT_IN]
    parts += [crd(i, suffix) for i in range(CUSTOM_KINDS)]
    parts += [custom_resource(i, suffix) for i in range(CUSTOM_KINDS)]
    return "---\n".join(parts)


def kind_count() -> int:
    """Distinct kinds in ``many_kinds()``: the built-in ones, CRD, and the custom ones."""
    return BUILT_IN.count("\nkind: ") + 1 + CUSTOM_KINDS

"""Render and sync a Helm chart of N objects (default 200: ConfigMaps, Services, Deployments made
by ``range`` loops in its templates), then re-sync with no change, and compare with
``helm template | kubectl apply --server-side -f -`` on the same chart, against the same control
plane, in the same run (issue 9's benchmark).

Measured, each as a separate process started the same way (start-up counts for both):

- render only: ``helm template`` alone vs Tether's render of the chart (``render_chart``, in a
  fresh Python process: hermetic helm plus reading the output);
- cold sync: ``tether sync --chart`` (discovery, render, plan, staged apply; ``--timeout 0``)
  vs the pipeline;
- no-op re-sync: the same two again, nothing changed (Tether's writes are counted: 0 expected).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.sync_1000 import tether_writes, timed
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.source.workspace import commit_all, init_repository

TEMPLATES = {
    "configmaps.yaml": """\
{{- range $i := until (int .Values.each) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-cm-{{ $i }}
data:
  index: {{ $i | quote }}
  payload: {{ $.Values.payload | quote }}
{{- end }}
""",
    "services.yaml": """\
{{- range $i := until (int .Values.each) }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $.Release.Name }}-svc-{{ $i }}
spec:
  selector:
    app: {{ $.Release.Name }}-{{ $i }}
  ports:
    - port: 80
      targetPort: 8080
{{- end }}
""",
    "deployments.yaml": """\
{{- range $i := until (int .Values.each) }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-dep-{{ $i }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ $.Release.Name }}-{{ $i }}
  template:
    metadata:
      labels:
        app: {{ $.Release.Name }}-{{ $i }}
    spec:
      containers:
        - name: main
          image: {{ $.Values.image }}
          ports:
            - containerPort: 8080
{{- end }}
""",
}

RENDER_ONLY = """
import sys
from pathlib import Path
from tether.render import Capabilities, Chart, RenderSettings, render_chart
root, helm, each = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
chart = Chart(root / "charts" / "big", "charts/big", "big", "default", {"each": each},
              Capabilities("v1.33.0"), tree=root)
print(len(render_chart(chart, RenderSettings(helm=helm))))
"""


def write_chart(root: Path, objects: int) -> int:
    each = max(objects // 3, 1)
    chart = root / "charts" / "big"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: big\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text(
        f"each: {each}\nimage: registry.example.com/app:1.0\npayload: '{'x' * 64}'\n"
    )
    for name, text in TEMPLATES.items():
        (chart / "templates" / name).write_text(text)
    return each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--cluster", default="bench-helm")
    args = parser.parse_args()

    cluster = DevCluster(args.cluster)
    kubeconfig = cluster.up()
    kubectl = str(ensure_binary("kubectl"))  # the pinned build first (find_binary's order)
    helm = str(ensure_binary("helm"))
    tether = str(Path(sys.executable).parent / "tether")
    env = {**os.environ, "TETHER_DB": str(Path(tempfile.mkdtemp()) / "audit.db")}
    suffix = uuid.uuid4().hex[:6]
    ns_tether, ns_peer = f"bench-tether-{suffix}", f"bench-helm-{suffix}"
    for ns in (ns_tether, ns_peer):
        subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", "create", "namespace", ns],
            check=True,
            capture_output=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        init_repository(repo)
        each = write_chart(repo, args.objects)
        commit_all(repo, "a big chart")
        chart = str(repo / "charts" / "big")
        template = [helm, "template", "big", chart, "--namespace", ns_peer]
        render = [sys.executable, "-c", RENDER_ONLY, str(repo), helm, str(each)]
        sync = [
            tether, "sync", "--source", str(repo), "--chart", "charts/big", "--release", "big",
            "--app", f"bench-{suffix}", "-n", ns_tether, "--timeout", "0", "-o", "json",
            f"--kubeconfig={kubeconfig}",
        ]  # fmt: skip
        pipeline = [
            "/bin/sh", "-c",
            '"$0" template big "$1" --namespace "$2" | "$3" --kubeconfig="$4" apply '
            '--server-side --field-manager=bench -n "$2" -f -',
            helm, chart, ns_peer, kubectl, str(kubeconfig),
        ]  # fmt: skip

        helm_render, _ = timed(template, env)
        tether_render, result = timed(render, env)
        rendered = int(result.stdout.strip())
        tether_cold, result = timed(sync, env)
        created = sum(1 for c in json.loads(result.stdout)["changes"] if c["action"] == "created")
        peer_cold, _ = timed(pipeline, env)
        time.sleep(2)  # let the controllers' first status writes land
        before = tether_writes(kubectl, kubeconfig, ns_tether)
        tether_noop, result = timed(sync, env)
        after = tether_writes(kubectl, kubeconfig, ns_tether)
        unchanged = sum(
            1 for c in json.loads(result.stdout)["changes"] if c["action"] == "unchanged"
        )
        peer_noop, _ = timed(pipeline, env)

    writes = sum(
        1
        for key, (version, applied) in after.items()
        if before[key][0] != version and before[key][1] != applied
    )
    print(f"chart of {rendered} objects (ConfigMaps, Services, Deployments); local control plane")
    print(
        f"render         tether {tether_render:6.2f}s   helm template {helm_render:6.2f}s"
        f"   ratio {tether_render / helm_render:.2f}"
    )
    print(
        f"cold sync      tether {tether_cold:6.2f}s ({created} created)   helm template | "
        f"kubectl apply --server-side {peer_cold:6.2f}s   ratio {tether_cold / peer_cold:.2f}"
    )
    print(
        f"no-op re-sync  tether {tether_noop:6.2f}s ({unchanged} unchanged, {writes} writes)   "
        f"helm template | kubectl apply --server-side {peer_noop:6.2f}s   "
        f"ratio {tether_noop / peer_noop:.2f}"
    )
    if os.environ.get("BENCH_KEEP_CLUSTER") != "1":
        cluster.down()


if __name__ == "__main__":
    main()

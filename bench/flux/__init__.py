"""Flux as a measured peer: source-controller and kustomize-controller run as local processes
against the benchmark's control plane (see ``bench/flux/build.sh`` and ``controllers.py``)."""

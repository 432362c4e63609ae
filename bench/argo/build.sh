#!/usr/bin/env bash
# Builds Argo Rollouts' controller from its Go module (through the Go module proxy), once per
# machine, for bench/delivery.py, which uses it as the peer of Tether's failed canary.
# Bench-only: scripts/setup does not call it, CI never builds it.
#
# Output, under ${TETHER_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/tether}/bin/:
#   argo-rollouts-v1.10.1/rollouts-controller   + crds/ (manifests/crds of the module)
# A directory that already holds its binary and CRDs is left alone, so a second run does nothing.
#
# The module cannot be `go install`-ed: its go.mod carries `replace` directives (every k8s.io
# staging module pinned to one Kubernetes release, a fork of the Telegram client), which Go
# refuses outside the main module. So it is downloaded with `go mod download -json`, its
# directory copied out of the (read-only) module cache and built there with its own go.mod and
# go.sum, as its Dockerfile does (CGO_ENABLED=0, -trimpath). Unlike Flux, every replace points at
# a published module version, so none is dropped.
#
# One line of the copy is changed before the build: the controller listens for metrics and
# health on "0.0.0.0:%d" (controller/controller.go, not a flag), and the benchmarks only open
# loopback ports, so it becomes "127.0.0.1:%d". Nothing else is touched; the build stops if that
# line is not found as expected.
#
# v1.10.1 rather than v1.10.2: v1.10.2 says `go 1.26.10`, newer than the Go that scripts/setup
# installs, and would fetch a second toolchain; v1.10.1 says `go 1.26.1`.
#
# Usage: bench/argo/build.sh            (prints the binary's path when done)
set -euo pipefail

ROLLOUTS_VERSION=v1.10.1
module=github.com/argoproj/argo-rollouts

cache="${TETHER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tether}"
target="${cache}/bin/argo-rollouts-${ROLLOUTS_VERSION}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

if [ -x "${target}/rollouts-controller" ] && [ -d "${target}/crds" ]; then
  echo "${target}/rollouts-controller"
  exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go is needed to build ${module} (run ./scripts/setup)" >&2; exit 1; }
mkdir -p "${cache}/bin" "${cache}/build"
work="$(mktemp -d "${cache}/build/.argo-rollouts-XXXXXX")"
trap 'chmod -R u+w "${work}" 2>/dev/null; rm -rf "${work}"' EXIT
printf 'module tether.local/argoprobe\n\ngo 1.24\n' > "${work}/go.mod"
dir="$(cd "${work}" && go mod download -json "${module}@${ROLLOUTS_VERSION}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "${dir}" ] || [ ! -d "${dir}/cmd/rollouts-controller" ]; then
  echo "build.sh: go mod download of ${module}@${ROLLOUTS_VERSION} gave no module directory" >&2
  exit 1
fi
cp -r "${dir}" "${work}/src"
chmod -R u+w "${work}/src"
listen="${work}/src/controller/controller.go"
grep -q 'listenAddr  *= "0.0.0.0:%d"' "${listen}" \
  || { echo "build.sh: ${listen} no longer has listenAddr = \"0.0.0.0:%d\"" >&2; exit 1; }
sed -i 's/listenAddr\(  *\)= "0.0.0.0:%d"/listenAddr\1= "127.0.0.1:%d"/' "${listen}"
echo "build.sh: building ${module}@${ROLLOUTS_VERSION} (once per machine, several minutes)…" >&2
(cd "${work}/src" && nice -n 10 go build -trimpath -ldflags "-s -w" \
  -o "${work}/out/rollouts-controller" ./cmd/rollouts-controller)
mkdir -p "${work}/out/crds"
cp "${work}/src/manifests/crds/"*-crd.yaml "${work}/out/crds/"
rm -rf "${target}"
mv "${work}/out" "${target}"
echo "${target}/rollouts-controller"

#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller from their Go modules (through the Go
# module proxy), once per machine, for the benchmarks that use Flux as the peer.
#
# Output, under ${TETHER_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/tether}/bin/:
#   flux-source-controller-v1.9.3/source-controller        + crds/ (config/crd/bases of the module)
#   flux-kustomize-controller-v1.9.6/kustomize-controller  + crds/
# A directory that already holds its binary is left alone, so a second run does nothing.
#
# Neither module can be `go install`-ed: both go.mod files carry `replace` directives (their
# ./api submodule, go-digest, and for kustomize-controller the kustomize api/kyaml pins), which
# Go refuses outside the main module. So each module is downloaded with `go mod download -json`,
# its directory copied out of the (read-only) module cache and built there with its own go.mod
# and go.sum, the way its Dockerfile does (CGO_ENABLED=0, -trimpath). One replace cannot work
# there: `<module>/api => ./api` points at a nested module, and Go's module zips leave nested
# modules out, so ./api is missing; it is dropped and the published `<module>/api` at the version
# go.mod already requires is used instead (the same tag of the same repository).
#
# Usage: bench/flux/build.sh            (prints the two binary paths when done)
set -euo pipefail

SOURCE_CONTROLLER_VERSION=v1.9.3
KUSTOMIZE_CONTROLLER_VERSION=v1.9.6

cache="${TETHER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tether}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"   # both modules say `go 1.26.0`
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

build_controller() {
  local name="$1" version="$2"
  local module="github.com/fluxcd/${name}"
  local target="${cache}/bin/flux-${name}-${version}"
  if [ -x "${target}/${name}" ] && [ -d "${target}/crds" ]; then
    echo "${target}/${name}"
    return
  fi
  command -v go >/dev/null || { echo "build.sh: Go is needed to build ${module} (run ./scripts/setup)" >&2; exit 1; }
  local work
  work="$(mktemp -d "${cache}/build/.flux-${name}-XXXXXX")"
  trap 'chmod -R u+w "${work}" 2>/dev/null; rm -rf "${work}"' RETURN
  printf 'module tether.local/fluxprobe\n\ngo 1.24\n' > "${work}/go.mod"
  local dir
  dir="$(cd "${work}" && go mod download -json "${module}@${version}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "${dir}" ] || [ ! -f "${dir}/main.go" ]; then
    echo "build.sh: go mod download of ${module}@${version} gave no module directory" >&2
    exit 1
  fi
  cp -r "${dir}" "${work}/src"
  chmod -R u+w "${work}/src"
  (cd "${work}/src" && go mod edit -dropreplace "${module}/api" && go mod download "${module}/api")
  echo "build.sh: building ${module}@${version} (once per machine)…" >&2
  (cd "${work}/src" && go build -trimpath -ldflags "-s -w" -o "${work}/out/${name}" .)
  mkdir -p "${work}/out/crds"
  cp "${work}/src/config/crd/bases/"*.yaml "${work}/out/crds/"
  rm -rf "${target}"
  mv "${work}/out" "${target}"
  echo "${target}/${name}"
}

mkdir -p "${cache}/bin" "${cache}/build"
build_controller source-controller "${SOURCE_CONTROLLER_VERSION}"
build_controller kustomize-controller "${KUSTOMIZE_CONTROLLER_VERSION}"

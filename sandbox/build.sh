#!/usr/bin/env bash
# Builds the sandbox's control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) and kwok from published Go modules into a cache folder
# outside the repository, keyed by the pins. Prints the bin folder on the last line.
# A second run with the same pins prints the folder at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.34.4   # keep in step with k8s/go.mod
KWOK_VERSION=v0.7.0

key=$(cat "$here/k8s/go.mod" "$here/k8s/go.sum" "$0" | sha256sum | cut -c1-12)
cache=${GKE_DEPLOYER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gke-deployer}
bin="$cache/k8s-$K8S_VERSION-$key/bin"
if [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$bin.tmp"
start=$(date +%s)
log() { echo "[sandbox build +$(( $(date +%s) - start ))s] $*" >&2; }

minor=$(echo "$K8S_VERSION" | cut -d. -f2)
ver=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver="$ver -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

cd "$here/k8s"
log "downloading Go modules for Kubernetes $K8S_VERSION (first run only)"
go mod download
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  log "building $cmd (cold builds take minutes; the Go build cache makes later ones fast)"
  go build -ldflags "-s -w $ver" -o "$bin.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done
log "building etcd"
go build -ldflags "-s -w" -o "$bin.tmp/etcd" go.etcd.io/etcd/server/v3
log "building kwok $KWOK_VERSION"
GOBIN="$bin.tmp" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

rm -rf "$bin" && mv "$bin.tmp" "$bin"
touch "$bin/.complete"
log "done in $(( $(date +%s) - start ))s"
echo "$bin"

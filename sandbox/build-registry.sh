#!/usr/bin/env bash
# Builds the sandbox's OCI registry (CNCF Distribution) and the oras CLI that tests push
# with, from published Go modules, into a cache folder outside the repository keyed by
# the pins. Separate from build.sh so that the Kubernetes binaries' cache key (which
# hashes build.sh) does not change when these pins do. Prints the bin folder last.
set -euo pipefail
DISTRIBUTION_VERSION=v3.1.2
ORAS_VERSION=v1.3.6

key=$(sha256sum < "$0" | cut -c1-12)
cache=${GKE_DEPLOYER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gke-deployer}
bin="$cache/registry-$DISTRIBUTION_VERSION-oras-$ORAS_VERSION-$key/bin"
if [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
start=$(date +%s)
log() { echo "[registry build +$(( $(date +%s) - start ))s] $*" >&2; }

log "building the Distribution registry $DISTRIBUTION_VERSION"
GOBIN="$bin.tmp" go install -ldflags "-s -w" "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
log "building oras $ORAS_VERSION"
GOBIN="$bin.tmp" go install -ldflags "-s -w" "oras.land/oras/cmd/oras@$ORAS_VERSION"

rm -rf "$bin" && mv "$bin.tmp" "$bin"
touch "$bin/.complete"
log "done in $(( $(date +%s) - start ))s"
echo "$bin"

#!/usr/bin/env bash
# Renders service.yaml for `gcloud run services replace` (cloudbuild.yaml's deploy step runs it):
#  - fills the placeholders: __IMAGE__, __PROJECT_ID__, __REGION__, __SERVICE__;
#  - pins each secret env var to its secret's newest enabled version: an env var is resolved
#    when an instance starts, so Google advises a fixed version over `latest` (every instance
#    of a revision then sees the same value, and a rotation is a new revision). Its placeholder
#    is __<VAR>_VERSION__, after the secret's name. A secret without an enabled version (a
#    report token never added) leaves its entry out; a secret that is missing, or whose
#    versions the build account may not list, fails the build;
#  - keeps Direct VPC egress (the revision's network-interfaces and vpc-access-egress
#    annotations) only with NETWORK set, for `internal` cluster endpoints.
#
#   IMAGE=… PROJECT=… REGION=… SERVICE=… [NETWORK=… [SUBNET=…]] bash deploy/gcloud/render-service.sh service.yaml > rendered.yaml
#
# test/shipping/service-yaml.test.ts and cloudbuild.test.ts run it against the gcloud stub.
set -euo pipefail
file=${1:?usage: render-service.sh service.yaml}
: "${IMAGE:?}" "${PROJECT:?}" "${REGION:?}" "${SERVICE:?}"
NETWORK=${NETWORK:-}
SUBNET=${SUBNET:-$NETWORK} # Cloud Run's default: the subnet named as the network

edits=(-e "s|__IMAGE__|$IMAGE|g" -e "s|__PROJECT_ID__|$PROJECT|g" -e "s|__REGION__|$REGION|g" -e "s|__SERVICE__|$SERVICE|g")
if [ -n "$NETWORK" ]; then
  edits+=(-e "s|__NETWORK__|$NETWORK|g" -e "s|__SUBNET__|$SUBNET|g")
else
  edits+=(-e '/run\.googleapis\.com\/network-interfaces:/d' -e '/run\.googleapis\.com\/vpc-access-egress:/d')
fi

# VAR SECRET for each __VAR_VERSION__: the secret is the last `name:` before it (secretKeyRef's).
pairs=$(awk '/name:/ { name = $NF } match($0, /__[A-Z0-9_]+_VERSION__/) { print substr($0, RSTART + 2, RLENGTH - 12), name }' "$file")
while read -r var secret; do
  [ -n "$var" ] || continue
  if ! version=$(gcloud secrets versions list "$secret" --project="$PROJECT" --filter=state:ENABLED --limit=1 --format='value(name.basename())'); then
    echo "render-service.sh: cannot list the versions of secret $secret ($var): deploy/gcloud/setup.sh creates every secret service.yaml names and lets the build account list their versions" >&2
    exit 1
  fi
  if [ -n "$version" ]; then
    echo "render-service.sh: $var = $secret version $version" >&2
    edits+=(-e "s|__${var}_VERSION__|$version|")
  else
    echo "render-service.sh: $var left out: secret $secret has no enabled version" >&2
    edits+=(-e "/^ *- name: ${var}\$/,/__${var}_VERSION__/d")
  fi
done <<<"$pairs"

sed "${edits[@]}" "$file"

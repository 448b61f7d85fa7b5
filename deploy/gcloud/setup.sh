#!/usr/bin/env bash
# Sets up a Google Cloud project for gke-deployer (docs/deploying.md walks through it).
# Idempotent: it creates what is missing, brings settings that drifted back, and changes
# nothing else, so run it again after any change (a new topic, a new config file...).
#
#   PROJECT=my-proj REGION=europe-west1 bash deploy/gcloud/setup.sh
#   PROJECT=my-proj CONFIG_FILE=deployer.yaml RECONCILE_TARGETS="web api" bash deploy/gcloud/setup.sh
#
# Settings (environment variables):
#   PROJECT             required: the project the service runs in
#   REGION              Cloud Run, Artifact Registry and bucket region (europe-west1)
#   SERVICE             Cloud Run service name (gke-deployer)
#   REPOSITORY          Artifact Registry repository for the deployer's image (gke-deployer)
#   CLUSTER_PROJECTS    projects whose GKE clusters it deploys to (PROJECT)
#   REGISTRY_PROJECTS   projects whose Artifact Registry repositories hold the images and
#                       manifests artifacts it deploys (PROJECT)
#   CONFIG_FILE         deployer.yaml to store as the config secret's newest version
#   TOPICS              Pub/Sub topics pushed to /pubsub: gcr (Artifact Registry),
#                       cloud-builds (Cloud Build) ("gcr")
#   RECONCILE_TARGETS   targets a Cloud Scheduler job re-applies ("")
#   RECONCILE_SCHEDULE  their cron schedule ("*/15 * * * *")
#   RELEASE_TARGETS     targets with windows or approval: a job deploys their held release
#                       once its hold ended (and reconciles otherwise) ("")
#   RELEASE_SCHEDULE    its cron schedule ("*/5 * * * *")
#   QUEUE               the queue: a topic and its ordered push subscription to /pubsub,
#                       both of this name (gke-deployer-queue; "" for none). Webhooks and
#                       Scheduler jobs publish their deploys there and are answered at once
#                       (`queue` in deployer.yaml, see the README)
#   REPORT_TOPIC        a topic every finished deploy is published to (report.topic):
#                       created, and gke-deployer@ may publish to it ("": none)
#   NETWORK, SUBNET     Direct VPC egress, for clusters reached by their `internal`
#                       endpoint: the VPC network and its subnet in REGION (SUBNET defaults
#                       to NETWORK). The placeholder service gets it, and the printed build
#                       command passes it on (cloudbuild.yaml's _NETWORK, _SUBNET). A Shared
#                       VPC's host project must let Cloud Run's service agent use the subnet
#                       (roles/compute.networkUser), which this script does not grant. ("": none)
#   TRACES              "gcp": the runtime identity may write traces to Cloud Trace
#                       (roles/cloudtrace.agent on PROJECT), for OTEL_TRACES_EXPORTER=gcp in
#                       service.yaml's env ("": no tracing, no grant)
#
# Identities it creates (and the only roles it grants them):
#   gke-deployer@            runtime: roles/container.clusterViewer on CLUSTER_PROJECTS (getCluster,
#                            and container.clusters.connect, which `dns` endpoints check),
#                            roles/artifactregistry.reader on REGISTRY_PROJECTS,
#                            secretAccessor on its own secrets, roles/pubsub.publisher
#                            on the QUEUE and REPORT_TOPIC topics only, roles/cloudtrace.agent
#                            when TRACES=gcp. Rights inside clusters
#                            come from deploy/kubernetes/rbac.yaml, per namespace.
#   gke-deployer-push@       signs Pub/Sub push requests (OIDC); run.invoker on the service
#   gke-deployer-scheduler@  signs Cloud Scheduler requests (OIDC); run.invoker on the service
#   gke-deployer-build@      runs cloudbuild.yaml: writes the image, replaces the service,
#                            lists (never reads) the versions of the env secrets it pins
set -euo pipefail

PROJECT=${PROJECT:?set PROJECT to the Google Cloud project id}
REGION=${REGION:-europe-west1}
SERVICE=${SERVICE:-gke-deployer}
REPOSITORY=${REPOSITORY:-gke-deployer}
CLUSTER_PROJECTS=${CLUSTER_PROJECTS:-$PROJECT}
REGISTRY_PROJECTS=${REGISTRY_PROJECTS:-$PROJECT}
CONFIG_FILE=${CONFIG_FILE:-}
TOPICS=${TOPICS:-gcr}
RECONCILE_TARGETS=${RECONCILE_TARGETS:-}
RECONCILE_SCHEDULE=${RECONCILE_SCHEDULE:-*/15 * * * *}
# Targets with windows or approval: their job deploys a held release once its hold ended
# (and reconciles otherwise), so it runs more often.
RELEASE_TARGETS=${RELEASE_TARGETS:-}
RELEASE_SCHEDULE=${RELEASE_SCHEDULE:-*/5 * * * *}
# Pub/Sub's maximum ack deadline, equal to service.yaml's timeoutSeconds (the longest a
# deploy may take, rollout wait included): a push is not redelivered while it still runs.
ACK_DEADLINE=600
# Permanent failures are acknowledged by the function; these are transient ones
# (cluster unreachable...): retried with backoff, then parked on the dead-letter topic.
MAX_DELIVERY_ATTEMPTS=5
MIN_RETRY_DELAY=10s
MAX_RETRY_DELAY=600s
QUEUE=${QUEUE-gke-deployer-queue}
REPORT_TOPIC=${REPORT_TOPIC:-}
NETWORK=${NETWORK:-}
SUBNET=${SUBNET:-$NETWORK}
TRACES=${TRACES:-}
case "$TRACES" in "" | gcp) ;; *) echo "TRACES must be gcp or empty, not '$TRACES'" >&2; exit 2 ;; esac
# A queued deploy is retried longer before it is parked: the events queued after it for
# the same target wait meanwhile (ordering), and move on once it is dead-lettered.
QUEUE_MAX_DELIVERY_ATTEMPTS=10
# A placeholder image for the service's first revision, so its URL, IAM and the
# subscriptions exist before the first build (cloudbuild.yaml) replaces it.
PLACEHOLDER_IMAGE=us-docker.pkg.dev/cloudrun/container/hello

RUNTIME_SA=gke-deployer@$PROJECT.iam.gserviceaccount.com  # as in service.yaml
PUSH_SA=gke-deployer-push@$PROJECT.iam.gserviceaccount.com
SCHEDULER_SA=gke-deployer-scheduler@$PROJECT.iam.gserviceaccount.com
BUILD_SA=gke-deployer-build@$PROJECT.iam.gserviceaccount.com
CONFIG_SECRET=gke-deployer-config  # names as in service.yaml
WEBHOOK_SECRETS=(gke-deployer-github-webhook-secret gke-deployer-gitlab-webhook-token)
# report.github/gitlab tokens and report.chat/slack webhook URLs (service.yaml: GITHUB_STATUS_TOKEN,
# GITLAB_STATUS_TOKEN, CHAT_WEBHOOK_URL, SLACK_WEBHOOK_URL), created empty: the build wires each
# one once it has a version.
REPORT_SECRETS=(gke-deployer-github-token gke-deployer-gitlab-token gke-deployer-chat-webhook gke-deployer-slack-webhook)
SOURCE_BUCKET=gs://$PROJECT-gke-deployer-source
DEAD_LETTER=gke-deployer-dead-letter
QUEUE_DEAD_LETTER=gke-deployer-queue-dead-letter  # only queued deploys: replayed apart
RETRY_DELAY_SECONDS=${RETRY_DELAY_SECONDS:-5}

step() { echo "==> $*" >&2; }
exists() { "$@" >/dev/null 2>&1; }
# IAM needs a few seconds before a new service account can be named in a policy.
retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if "$@"; then return 0; fi
    [ "$attempt" = 5 ] && return 1
    echo "    retrying in ${RETRY_DELAY_SECONDS}s (IAM propagation)" >&2
    sleep "$RETRY_DELAY_SECONDS"
  done
}
gc() { gcloud "$@" --project="$PROJECT" --quiet; }
bind() { retry gc "$@" --format=none; }

ensure_sa() { # name, display name
  exists gc iam service-accounts describe "$1@$PROJECT.iam.gserviceaccount.com" ||
    gc iam service-accounts create "$1" --display-name="$2"
}

ensure_secret() { # name
  exists gc secrets describe "$1" || gc secrets create "$1" --replication-policy=automatic
  bind secrets add-iam-policy-binding "$1" --member="serviceAccount:$RUNTIME_SA" --role=roles/secretmanager.secretAccessor
}

has_version() { # secret
  [ -n "$(gc secrets versions list "$1" --filter=state:ENABLED --limit=1 --format='value(name)')" ]
}

ensure_topic() { # name
  exists gc pubsub topics describe "$1" || gc pubsub topics create "$1"
}

# Every API this script, cloudbuild.yaml, the guide's steps and the function use:
# cloudresourcemanager (projects describe, project IAM), iam (service accounts), iamcredentials
# (the guide's impersonated ID token), storage (the source bucket), cloudbuild, artifactregistry
# (the image; the function reads images and manifests), run, secretmanager, pubsub (triggers,
# queue, results), cloudscheduler, container (getCluster), logging (`run services logs read`),
# cloudtrace (OTEL_TRACES_EXPORTER=gcp), monitoring (the README's alert policy), and compute for a
# VPC network.
APIS=(cloudresourcemanager iam iamcredentials storage cloudbuild artifactregistry run secretmanager pubsub cloudscheduler container logging cloudtrace monitoring)
[ -z "$NETWORK" ] || APIS+=(compute)
step "APIs"
gc services enable "${APIS[@]/%/.googleapis.com}"
PROJECT_NUMBER=$(gc projects describe "$PROJECT" --format='value(projectNumber)')
PUBSUB_AGENT=service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com

step "service accounts"
ensure_sa gke-deployer "gke-deployer runtime"
ensure_sa gke-deployer-push "gke-deployer Pub/Sub push"
ensure_sa gke-deployer-scheduler "gke-deployer Cloud Scheduler"
ensure_sa gke-deployer-build "gke-deployer Cloud Build"

# roles/container.clusterViewer: getCluster (container.clusters.get) for the endpoint and CA, and
# container.clusters.connect, which a `dns` endpoint checks before Kubernetes RBAC; it grants
# nothing inside a cluster.
step "runtime: roles/container.clusterViewer on ${CLUSTER_PROJECTS}"
for p in $CLUSTER_PROJECTS; do
  bind projects add-iam-policy-binding "$p" --member="serviceAccount:$RUNTIME_SA" --role=roles/container.clusterViewer --condition=None
done

# Read-only registry access: the function resolves image tags to digests and fetches
# manifests artifacts with its own ADC token (the Docker v2 token flow), nothing stored.
# Project-wide here; to narrow it, grant the role on each repository instead
# (gcloud artifacts repositories add-iam-policy-binding REPO --location=L ...).
step "runtime: roles/artifactregistry.reader on ${REGISTRY_PROJECTS}"
for p in $REGISTRY_PROJECTS; do
  bind projects add-iam-policy-binding "$p" --member="serviceAccount:$RUNTIME_SA" --role=roles/artifactregistry.reader --condition=None
done

if [ "$TRACES" = gcp ]; then
  # Writes spans only (cloudtrace.traces.patch); reading traces stays with people.
  step "runtime: roles/cloudtrace.agent on ${PROJECT}"
  bind projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$RUNTIME_SA" --role=roles/cloudtrace.agent --condition=None
fi

step "secrets"
config_version=
ensure_secret "$CONFIG_SECRET"
if [ -n "$CONFIG_FILE" ]; then
  if has_version "$CONFIG_SECRET" && gc secrets versions access latest --secret="$CONFIG_SECRET" | cmp -s - "$CONFIG_FILE"; then
    echo "    $CONFIG_SECRET: latest version already holds $CONFIG_FILE" >&2
  else
    config_version=$(gc secrets versions add "$CONFIG_SECRET" --data-file="$CONFIG_FILE" --format='value(name.basename())')
  fi
elif ! has_version "$CONFIG_SECRET"; then
  echo "    $CONFIG_SECRET has no version yet: write deployer.yaml and run again with CONFIG_FILE=deployer.yaml" >&2
fi
for s in "${WEBHOOK_SECRETS[@]}"; do
  ensure_secret "$s"
  # A random secret to start with (GitHub/GitLab are given the same value): read it with
  #   gcloud secrets versions access latest --secret=NAME
  has_version "$s" || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | gc secrets versions add "$s" --data-file=-
done
for s in "${REPORT_SECRETS[@]}"; do ensure_secret "$s"; done
# The build pins each env secret to its newest enabled version (deploy/gcloud/render-service.sh):
# it lists the versions, it never reads a value.
for s in "${WEBHOOK_SECRETS[@]}" "${REPORT_SECRETS[@]}"; do
  bind secrets add-iam-policy-binding "$s" --member="serviceAccount:$BUILD_SA" --role=roles/secretmanager.viewer
done

step "build: image repository, source bucket, rights to deploy the service"
exists gc artifacts repositories describe "$REPOSITORY" --location="$REGION" ||
  gc artifacts repositories create "$REPOSITORY" --repository-format=docker --location="$REGION" --description="gke-deployer images"
bind artifacts repositories add-iam-policy-binding "$REPOSITORY" --location="$REGION" --member="serviceAccount:$BUILD_SA" --role=roles/artifactregistry.writer
exists gc storage buckets describe "$SOURCE_BUCKET" ||
  gc storage buckets create "$SOURCE_BUCKET" --location="$REGION" --uniform-bucket-level-access
bind storage buckets add-iam-policy-binding "$SOURCE_BUCKET" --member="serviceAccount:$BUILD_SA" --role=roles/storage.objectViewer
bind projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$BUILD_SA" --role=roles/logging.logWriter --condition=None
# The service runs as the runtime account: whoever deploys it must be allowed to act as it.
bind iam service-accounts add-iam-policy-binding "$RUNTIME_SA" --member="serviceAccount:$BUILD_SA" --role=roles/iam.serviceAccountUser

step "Cloud Run service $SERVICE"
vpc=()
[ -z "$NETWORK" ] || vpc=(--network="$NETWORK" --subnet="$SUBNET" --vpc-egress=private-ranges-only)
if ! exists gc run services describe "$SERVICE" --region="$REGION"; then
  gc run deploy "$SERVICE" --image="$PLACEHOLDER_IMAGE" --region="$REGION" --service-account="$RUNTIME_SA" --no-invoker-iam-check "${vpc[@]}"
elif [ -n "$config_version" ]; then
  # The config is read at start-up: a new revision of the same image reads the new version.
  # A config change is this, not a rebuild (the next build's revision reads it too).
  echo "    a new revision reads $CONFIG_SECRET version $config_version" >&2
  gc run services update "$SERVICE" --region="$REGION" --update-labels="gke-deployer-config=$config_version"
fi
URL=$(gc run services describe "$SERVICE" --region="$REGION" --format='value(status.url)')
# run.admin on this one service only: service.yaml turns the invoker IAM check off,
# which takes run.services.setIamPolicy.
bind run services add-iam-policy-binding "$SERVICE" --region="$REGION" --member="serviceAccount:$BUILD_SA" --role=roles/run.admin
# Not checked while the invoker IAM check is off (every route authenticates in the app);
# kept so Pub/Sub and Scheduler keep working if you turn the check back on.
for sa in "$PUSH_SA" "$SCHEDULER_SA"; do
  bind run services add-iam-policy-binding "$SERVICE" --region="$REGION" --member="serviceAccount:$sa" --role=roles/run.invoker
done

step "Pub/Sub: push to $URL/pubsub"
# Pub/Sub signs push requests as the push account, and parks undeliverable messages.
bind iam service-accounts add-iam-policy-binding "$PUSH_SA" --member="serviceAccount:$PUBSUB_AGENT" --role=roles/iam.serviceAccountTokenCreator
ensure_topic "$DEAD_LETTER"
bind pubsub topics add-iam-policy-binding "$DEAD_LETTER" --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.publisher
exists gc pubsub subscriptions describe "$DEAD_LETTER" ||
  gc pubsub subscriptions create "$DEAD_LETTER" --topic="$DEAD_LETTER" --message-retention-duration=7d
for topic in $TOPICS; do
  ensure_topic "$topic"
  sub=gke-deployer-$topic
  push=(--push-endpoint="$URL/pubsub" --push-auth-service-account="$PUSH_SA" --push-auth-token-audience="$URL/pubsub"
    --ack-deadline="$ACK_DEADLINE" --dead-letter-topic="$DEAD_LETTER" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS"
    --min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY")
  if exists gc pubsub subscriptions describe "$sub"; then
    gc pubsub subscriptions update "$sub" "${push[@]}"
  else
    gc pubsub subscriptions create "$sub" --topic="$topic" "${push[@]}"
  fi
  bind pubsub subscriptions add-iam-policy-binding "$sub" --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber
done

if [ -n "$QUEUE" ]; then
  step "queue: topic $QUEUE, ordered push to $URL/pubsub"
  # Only the function publishes here. A message deploys only with the function's own ID token
  # in it, so another publisher could not deploy through it anyway (README, `queue`).
  ensure_topic "$QUEUE"
  bind pubsub topics add-iam-policy-binding "$QUEUE" --member="serviceAccount:$RUNTIME_SA" --role=roles/pubsub.publisher
  ensure_topic "$QUEUE_DEAD_LETTER"
  bind pubsub topics add-iam-policy-binding "$QUEUE_DEAD_LETTER" --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.publisher
  # Kept until someone pulls them. Never expiring: a quiet month must not delete the queue's
  # subscriptions (the function would go on publishing to a topic nobody reads).
  exists gc pubsub subscriptions describe "$QUEUE_DEAD_LETTER" ||
    gc pubsub subscriptions create "$QUEUE_DEAD_LETTER" --topic="$QUEUE_DEAD_LETTER" --message-retention-duration=7d --expiration-period=never
  push=(--push-endpoint="$URL/pubsub" --push-auth-service-account="$PUSH_SA" --push-auth-token-audience="$URL/pubsub"
    --ack-deadline="$ACK_DEADLINE" --dead-letter-topic="$QUEUE_DEAD_LETTER" --max-delivery-attempts="$QUEUE_MAX_DELIVERY_ATTEMPTS"
    --min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY" --expiration-period=never)
  if exists gc pubsub subscriptions describe "$QUEUE"; then
    # Message ordering is fixed when a subscription is created: update cannot change it.
    gc pubsub subscriptions update "$QUEUE" "${push[@]}"
  else
    gc pubsub subscriptions create "$QUEUE" --topic="$QUEUE" --enable-message-ordering "${push[@]}"
  fi
  bind pubsub subscriptions add-iam-policy-binding "$QUEUE" --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber
fi

if [ -n "$REPORT_TOPIC" ]; then
  step "report topic $REPORT_TOPIC: every finished deploy is published there"
  ensure_topic "$REPORT_TOPIC"
  bind pubsub topics add-iam-policy-binding "$REPORT_TOPIC" --member="serviceAccount:$RUNTIME_SA" --role=roles/pubsub.publisher
fi

# One job per target: POST {"target"} to /scheduler, with the scheduler identity's OIDC token.
scheduler_job() { # NAME SCHEDULE TARGET
  local http=(--location="$REGION" --schedule="$2" --uri="$URL/scheduler" --http-method=POST
    --message-body="{\"target\":\"$3\"}" --oidc-service-account-email="$SCHEDULER_SA"
    --oidc-token-audience="$URL/scheduler" --attempt-deadline="${ACK_DEADLINE}s")
  if exists gc scheduler jobs describe "$1" --location="$REGION"; then
    gc scheduler jobs update http "$1" "${http[@]}" --update-headers=Content-Type=application/json
  else
    gc scheduler jobs create http "$1" "${http[@]}" --headers=Content-Type=application/json
  fi
}

# Metrics are log-based (README: Operating it): counted from the deploy log line, with
# this service's name in each filter; the rollback alert policy is made once.
step "Cloud Monitoring: log-based metrics and the rollback alert"
MONITORING=$(cd "$(dirname "$0")" && pwd)/monitoring
metrics_dir=$(mktemp -d)
for file in "$MONITORING"/*.yaml; do
  name=$(basename "$file" .yaml)
  [ "${name#alert-}" = "$name" ] || continue
  sed "s/\\\${SERVICE}/$SERVICE/g" "$file" > "$metrics_dir/$name.yaml"
  if exists gc logging metrics describe "gke-deployer/$name"; then
    gc logging metrics update "gke-deployer/$name" --config-from-file="$metrics_dir/$name.yaml"
  else
    gc logging metrics create "gke-deployer/$name" --config-from-file="$metrics_dir/$name.yaml"
  fi
done
if [ -z "$(gc alpha monitoring policies list --filter='displayName="gke-deployer rollbacks"' --format='value(name)' 2>/dev/null)" ]; then
  gc alpha monitoring policies create --policy-from-file="$MONITORING/alert-rollbacks.yaml"
fi

step "Cloud Scheduler: reconcile ${RECONCILE_TARGETS:-(no targets)}"
for target in $RECONCILE_TARGETS; do scheduler_job "gke-deployer-reconcile-$target" "$RECONCILE_SCHEDULE" "$target"; done
step "Cloud Scheduler: release held deploys of ${RELEASE_TARGETS:-(no targets)}"
for target in $RELEASE_TARGETS; do scheduler_job "gke-deployer-release-$target" "$RELEASE_SCHEDULE" "$target"; done

queue_config=
[ -z "$QUEUE" ] ||
  queue_config="  queue: { topic: projects/$PROJECT/topics/$QUEUE, subscription: projects/$PROJECT/subscriptions/$QUEUE }"
report_config="  # report:"
[ -z "$REPORT_TOPIC" ] || report_config="  report:
    topic: projects/$PROJECT/topics/$REPORT_TOPIC"
build_vpc=
[ -z "$NETWORK" ] || build_vpc=",_NETWORK=$NETWORK,_SUBNET=$SUBNET"

cat <<EOF

gke-deployer is set up in $PROJECT. In deployer.yaml (then run again with CONFIG_FILE=deployer.yaml):
  auth:
    pubsub:    { audience: $URL/pubsub, serviceAccounts: [$PUSH_SA] }
    scheduler: { audience: $URL/scheduler, serviceAccounts: [$SCHEDULER_SA] }
    approve:   { audience: $URL/approve }   # targets with approval: (people approve with their gcloud token)
    github:    { secretEnv: GITHUB_WEBHOOK_SECRET }   # secret ${WEBHOOK_SECRETS[0]}
    gitlab:    { tokenEnv: GITLAB_WEBHOOK_TOKEN }     # secret ${WEBHOOK_SECRETS[1]}
$queue_config
$report_config
  #   github: { tokenEnv: GITHUB_STATUS_TOKEN }   (secret ${REPORT_SECRETS[0]})
  #   gitlab: { tokenEnv: GITLAB_STATUS_TOKEN }   (secret ${REPORT_SECRETS[1]})
  #   chat:   { webhookEnv: CHAT_WEBHOOK_URL }    (secret ${REPORT_SECRETS[2]})
  #   slack:  { webhookEnv: SLACK_WEBHOOK_URL }   (secret ${REPORT_SECRETS[3]})
  #   each once its secret holds the token or webhook URL, stored before the build wires it in:
  #   printf %s "\$TOKEN" | gcloud secrets versions add ${REPORT_SECRETS[0]} --data-file=- --project=$PROJECT
Grant it rights in each target namespace (with cluster credentials):
  export NAMESPACE=<namespace> SERVICE_ACCOUNT=$RUNTIME_SA
  envsubst < deploy/kubernetes/rbac.yaml | kubectl apply -f -
Build and deploy the service (from the clone, whose commit tags the image):
  gcloud builds submit --config=cloudbuild.yaml --project=$PROJECT --region=$REGION \\
    --service-account=projects/$PROJECT/serviceAccounts/$BUILD_SA \\
    --gcs-source-staging-dir=$SOURCE_BUCKET/source \\
    --substitutions=_REGION=$REGION,_REPOSITORY=$REPOSITORY,_SERVICE=$SERVICE$build_vpc,_COMMIT="\$(git rev-parse --short HEAD)"
EOF

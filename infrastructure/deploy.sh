#!/usr/bin/env bash
# Deploy the bot to ECS Fargate in one command.
#
#   infrastructure/deploy.sh -e ENV -a ACCOUNT -r REGION [--image-tag T] [--env-file F]
#                            [--dry-run] [--yes]
#
# Builds and pushes the image to ECR (creating the repository), writes the credentials of the
# env file to Secrets Manager (never printing a value), deploys infrastructure/ecs/stack.yaml
# through a change set (shown, then confirmed unless --yes), waits for the service to be stable
# and prints the URL. Running it again with the same inputs changes nothing. --dry-run prints
# every action and makes none. See infrastructure/README.md.
#
# Environment:
#   DEPLOY_IMAGE_BUILDER   command run as `$DEPLOY_IMAGE_BUILDER IMAGE_URI` to build and push
#                          the image (default: infrastructure/image.sh build, then login and
#                          push with the tool of CONTAINER_BUILD, "docker build" by default)
#   DEPLOY_STABLE_TIMEOUT  seconds to wait for the service to be stable (default 900)
#   DEPLOY_STACK_TIMEOUT   seconds to wait for the stack (default 2700; RDS takes a while)
#   DEPLOY_POLL_SECONDS    seconds between polls (default 10)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TEMPLATE="$HERE/ecs/stack.yaml"
ENVFILE_PY="$HERE/envfile.py"
STABLE_TIMEOUT="${DEPLOY_STABLE_TIMEOUT:-900}"
STACK_TIMEOUT="${DEPLOY_STACK_TIMEOUT:-2700}"
POLL="${DEPLOY_POLL_SECONDS:-10}"

ENV_NAME="" ACCOUNT="" REGION="" IMAGE_TAG="" ENV_FILE="" DRY_RUN=0 YES=0

usage() {
  echo "usage: deploy.sh -e ENV -a ACCOUNT -r REGION [--image-tag T] [--env-file F] [--dry-run] [--yes]" >&2
  exit 2
}

die() {
  echo "deploy: error: $*" >&2
  exit 1
}

say() {
  echo "deploy: $*"
}

# Run a changing action, or print it under --dry-run.
act() {
  local what="$1"
  shift
  if ((DRY_RUN)); then
    say "[dry-run] would $what"
    return 0
  fi
  say "$what"
  "$@"
}

aws_() {
  aws --region "$REGION" --output text "$@"
}

quiet() {
  "$@" >/dev/null
}

while (($#)); do
  case "$1" in
    -e) ENV_NAME="${2:-}"; shift 2 ;;
    -a) ACCOUNT="${2:-}"; shift 2 ;;
    -r) REGION="${2:-}"; shift 2 ;;
    --image-tag) IMAGE_TAG="${2:-}"; shift 2 ;;
    --env-file) ENV_FILE="${2:-}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --yes) YES=1; shift ;;
    -h | --help) usage ;;
    *) echo "deploy: unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n "$ENV_NAME" && -n "$ACCOUNT" && -n "$REGION" ]] || usage
[[ "$ENV_NAME" =~ ^[a-z][a-z0-9-]{0,19}$ ]] || die "-e $ENV_NAME: use lower-case letters, digits and -, up to 20"
[[ "$ACCOUNT" =~ ^[0-9]{12}$ ]] || die "-a $ACCOUNT: an AWS account id is 12 digits"
ENV_FILE="${ENV_FILE:-$ROOT/.env.$ENV_NAME}"
[[ -f "$ENV_FILE" ]] || die "env file $ENV_FILE not found (pass --env-file; see infrastructure/README.md)"

# --- tools, credentials, account -------------------------------------------------------------
command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not installed or not on PATH: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed or not on PATH"
python3 "$ENVFILE_PY" check "$ENV_FILE" || die "fix the env file $ENV_FILE"

WORK="$(mktemp -d)"
chmod 700 "$WORK"
trap 'rm -rf "$WORK"' EXIT

if ! CALLER="$(aws_ sts get-caller-identity --query Account 2>"$WORK/sts.err")"; then
  if grep -qiE "expired|ExpiredToken" "$WORK/sts.err"; then
    die "the AWS credentials have expired: sign in again (aws sso login, or refresh your keys)"
  fi
  die "cannot use the AWS credentials: $(tr '\n' ' ' <"$WORK/sts.err")"
fi
[[ "$CALLER" == "$ACCOUNT" ]] || die "the credentials belong to account $CALLER, not $ACCOUNT (-a): switch profile (AWS_PROFILE) or fix -a"
say "account $ACCOUNT, region $REGION, environment $ENV_NAME"

STACK="incident-bot-$ENV_NAME"
REPOSITORY="incident-bot"
REGISTRY="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com"
if [[ -z "$IMAGE_TAG" ]]; then
  IMAGE_TAG="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null)" || die "no --image-tag and not a git checkout"
  if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    # uncommitted changes: a tag from their content, so the same tree gives the same tag
    IMAGE_TAG="$IMAGE_TAG-dirty-$(git -C "$ROOT" diff HEAD | sha256sum | cut -c1-8)"
  fi
fi
IMAGE_URI="$REGISTRY/$REPOSITORY:$IMAGE_TAG"

# --- image ---------------------------------------------------------------------------------
# The default image builder: image.sh builds with CONTAINER_BUILD (default "docker build"), and
# the same tool (docker or podman) logs in to ECR and pushes.
build_and_push() {
  local uri="$1" tool
  read -r tool _ <<<"${CONTAINER_BUILD:-docker build}"
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (set CONTAINER_BUILD, or DEPLOY_IMAGE_BUILDER)"
  "$HERE/image.sh" build "$uri"
  aws_ ecr get-login-password | "$tool" login --username AWS --password-stdin "$REGISTRY"
  "$tool" push "$uri"
}

if ! aws_ ecr describe-repositories --repository-names "$REPOSITORY" >/dev/null 2>&1; then
  act "create ECR repository $REPOSITORY" \
    quiet aws_ ecr create-repository --repository-name "$REPOSITORY" \
    --image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE
fi
if aws_ ecr describe-images --repository-name "$REPOSITORY" \
  --image-ids "imageTag=$IMAGE_TAG" >/dev/null 2>&1; then
  say "image $IMAGE_URI is already in ECR"
else
  builder="${DEPLOY_IMAGE_BUILDER:-build_and_push}"
  act "build and push $IMAGE_URI" "$builder" "$IMAGE_URI"
fi

# --- secrets -------------------------------------------------------------------------------
# Read secret $1: its ARN into SECRET_ARN (empty when it does not exist), its value into file $2.
read_secret() {
  local name="$1" out="$2"
  if aws_ secretsmanager get-secret-value --secret-id "$name" --query '[ARN, SecretString]' \
    >"$WORK/secret.tsv" 2>/dev/null; then
    SECRET_ARN="$(cut -f1 "$WORK/secret.tsv")"
    cut -f2- "$WORK/secret.tsv" | tr -d '\n' >"$out"
  else
    SECRET_ARN=""
    : >"$out"
  fi
  rm -f "$WORK/secret.tsv"
}

# Make secret $1 (read by read_secret) hold file $2, unless $3 is "unchanged". The value is
# never printed. Leaves the ARN in SECRET_ARN.
write_secret() {
  local name="$1" file="$2" change="$3"
  if [[ -n "$SECRET_ARN" && "$change" == unchanged ]]; then
    say "secret $name unchanged"
  elif ((DRY_RUN)); then
    say "[dry-run] would $([[ -n "$SECRET_ARN" ]] && echo update || echo create) secret $name"
    SECRET_ARN="${SECRET_ARN:-arn:aws:secretsmanager:$REGION:$ACCOUNT:secret:$name}"
  elif [[ -n "$SECRET_ARN" ]]; then
    say "update secret $name"
    quiet aws_ secretsmanager put-secret-value --secret-id "$name" --secret-string "file://$file"
    SECRETS_UPDATED=1
  else
    say "create secret $name"
    SECRET_ARN="$(aws_ secretsmanager create-secret --name "$name" --secret-string "file://$file" \
      --query ARN)"
  fi
}

APP_SECRET="incident-bot/$ENV_NAME/app"
read_secret "$APP_SECRET" "$WORK/current.json"
CHANGE="$(python3 "$ENVFILE_PY" secret "$ENV_FILE" "$WORK/current.json" "$WORK/app.json")"
write_secret "$APP_SECRET" "$WORK/app.json" "$CHANGE"
APP_SECRET_ARN="$SECRET_ARN"

DB_SECRET_ARN=""
python3 "$ENVFILE_PY" value "$ENV_FILE" BOT_DATABASE_URL "$WORK/database-url"
if [[ -s "$WORK/database-url" ]]; then
  DB_SECRET="incident-bot/$ENV_NAME/database-url-external"
  read_secret "$DB_SECRET" "$WORK/current-db"
  CHANGE=changed
  if cmp -s "$WORK/current-db" "$WORK/database-url"; then
    CHANGE=unchanged
  fi
  write_secret "$DB_SECRET" "$WORK/database-url" "$CHANGE"
  DB_SECRET_ARN="$SECRET_ARN"
  say "database: the existing one in BOT_DATABASE_URL"
else
  say "database: an RDS PostgreSQL instance made by the stack"
fi

# --- stack, through a change set -----------------------------------------------------------
python3 "$ENVFILE_PY" parameters "$ENV_FILE" "$WORK/parameters.json" \
  "EnvironmentName=$ENV_NAME" "ImageUri=$IMAGE_URI" "RepositoryName=$REPOSITORY" \
  "AppSecretArn=$APP_SECRET_ARN" "DatabaseUrlSecretArn=$DB_SECRET_ARN"

STACK_STATUS="$(aws_ cloudformation describe-stacks --stack-name "$STACK" \
  --query 'Stacks[0].StackStatus' 2>/dev/null || echo NONE)"
case "$STACK_STATUS" in
  NONE | REVIEW_IN_PROGRESS) CHANGE_TYPE=CREATE ;;
  *_IN_PROGRESS) die "stack $STACK is busy ($STACK_STATUS); wait and run again" ;;
  ROLLBACK_COMPLETE) die "stack $STACK failed to create (ROLLBACK_COMPLETE): delete it (aws cloudformation delete-stack --stack-name $STACK) and run again" ;;
  *) CHANGE_TYPE=UPDATE ;;
esac
CHANGE_SET="deploy-$(date -u +%Y%m%d%H%M%S)"

if ((DRY_RUN)); then
  say "[dry-run] would create change set $CHANGE_SET ($CHANGE_TYPE) on stack $STACK from $TEMPLATE"
  say "[dry-run] would show it, ask, execute it and wait for the service to be stable"
  exit 0
fi

say "creating change set $CHANGE_SET ($CHANGE_TYPE) on stack $STACK"
if ! aws_ cloudformation create-change-set --stack-name "$STACK" --change-set-name "$CHANGE_SET" \
  --change-set-type "$CHANGE_TYPE" --template-body "file://$TEMPLATE" \
  --parameters "file://$WORK/parameters.json" --capabilities CAPABILITY_IAM \
  >/dev/null 2>"$WORK/change-set.err"; then
  die "CloudFormation refused the change set: $(tr '\n' ' ' <"$WORK/change-set.err")"
fi

deadline=$((SECONDS + 300))
while :; do
  read -r CS_STATUS CS_REASON < <(aws_ cloudformation describe-change-set --stack-name "$STACK" \
    --change-set-name "$CHANGE_SET" --query '[Status, StatusReason]' | tr '\t' ' ') || true
  case "$CS_STATUS" in
    CREATE_COMPLETE) break ;;
    FAILED)
      aws_ cloudformation delete-change-set --stack-name "$STACK" --change-set-name "$CHANGE_SET" >/dev/null 2>&1 || true
      if [[ "$CS_REASON" == *"didn't contain changes"* || "$CS_REASON" == *"No updates are to be performed"* ]]; then
        say "no changes: stack $STACK is already up to date"
        NO_CHANGES=1
        break
      fi
      die "change set $CHANGE_SET failed: $CS_REASON"
      ;;
  esac
  ((SECONDS < deadline)) || die "change set $CHANGE_SET still $CS_STATUS after 300s"
  sleep "$POLL"
done

if [[ -z "${NO_CHANGES:-}" ]]; then
  say "changes:"
  aws --region "$REGION" cloudformation describe-change-set --stack-name "$STACK" \
    --change-set-name "$CHANGE_SET" --output table \
    --query 'Changes[].ResourceChange.{Action:Action,Resource:LogicalResourceId,Type:ResourceType,Replace:Replacement}'
  if ((!YES)); then
    [[ -t 0 ]] || die "not a terminal: pass --yes to execute change set $CHANGE_SET"
    read -r -p "deploy: execute change set $CHANGE_SET? [y/N] " answer
    [[ "$answer" == [yY]* ]] || { say "not executed; change set $CHANGE_SET left for review"; exit 0; }
  fi
  if ! aws_ cloudformation execute-change-set --stack-name "$STACK" --change-set-name "$CHANGE_SET" \
    >/dev/null 2>"$WORK/execute.err"; then
    die "change set $CHANGE_SET could not be executed: $(tr '\n' ' ' <"$WORK/execute.err")"
  fi
  say "executing change set $CHANGE_SET; waiting for stack $STACK (at most ${STACK_TIMEOUT}s)"
  deadline=$((SECONDS + STACK_TIMEOUT))
  while :; do
    STACK_STATUS="$(aws_ cloudformation describe-stacks --stack-name "$STACK" \
      --query 'Stacks[0].StackStatus')" || STACK_STATUS=UNKNOWN
    case "$STACK_STATUS" in
      CREATE_COMPLETE | UPDATE_COMPLETE) break ;;
      *ROLLBACK* | *FAILED)
        aws --region "$REGION" cloudformation describe-stack-events --stack-name "$STACK" --output text \
          --query "StackEvents[?contains(ResourceStatus, 'FAILED')].[LogicalResourceId, ResourceStatusReason] | [:10]" >&2 || true
        die "stack $STACK: $STACK_STATUS (reasons above)"
        ;;
    esac
    ((SECONDS < deadline)) || die "stack $STACK still $STACK_STATUS after ${STACK_TIMEOUT}s"
    sleep "$POLL"
  done
  say "stack $STACK: $STACK_STATUS"
fi

output() {
  aws_ cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue | [0]"
}
CLUSTER="$STACK"  # the stack names its cluster and service after itself
SERVICE="$STACK"

# --- the service ---------------------------------------------------------------------------
# Tasks read their secrets when they start: new values with an unchanged stack need new tasks.
if [[ -n "${NO_CHANGES:-}" && -n "${SECRETS_UPDATED:-}" ]]; then
  say "restarting the tasks of service $SERVICE so they read the new secrets"
  quiet aws_ ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --force-new-deployment
  NO_CHANGES=""
fi
if [[ -z "${NO_CHANGES:-}" ]]; then
  say "waiting for service $SERVICE to be stable (at most ${STABLE_TIMEOUT}s)"
  deadline=$((SECONDS + STABLE_TIMEOUT))
  while :; do
    read -r DEPLOYMENTS RUNNING DESIRED < <(aws_ ecs describe-services --cluster "$CLUSTER" \
      --services "$SERVICE" --query 'services[0].[length(deployments), runningCount, desiredCount]' | tr '\t' ' ') || true
    if [[ "$DEPLOYMENTS" == 1 && "$RUNNING" == "$DESIRED" && "$DESIRED" != 0 ]]; then
      say "service $SERVICE is stable: $RUNNING of $DESIRED tasks running"
      break
    fi
    if ((SECONDS >= deadline)); then
      aws --region "$REGION" ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
        --output text --query 'services[0].events[:5].[createdAt, message]' >&2 || true
      die "service $SERVICE did not become stable within ${STABLE_TIMEOUT}s ($RUNNING of $DESIRED tasks running, $DEPLOYMENTS deployments; latest events above); read the logs: aws logs tail /incident-bot/$ENV_NAME --follow"
    fi
    sleep "$POLL"
  done
fi

URL="$(output Url)"
LB_DNS="$(output LoadBalancerDnsName)"
if [[ -z "$LB_DNS" || "$LB_DNS" == None ]]; then  # a stack without outputs: ask the load balancer
  LB_ARN="$(aws_ cloudformation list-stack-resources --stack-name "$STACK" \
    --query "StackResourceSummaries[?LogicalResourceId=='LoadBalancer'].PhysicalResourceId | [0]")"
  LB_DNS="$(aws_ elbv2 describe-load-balancers --load-balancer-arns "$LB_ARN" \
    --query 'LoadBalancers[0].DNSName')"
fi
if [[ -z "$URL" || "$URL" == None ]]; then
  URL="https://$LB_DNS"
fi

cat <<EOF

The bot is at $URL

Next steps:
  Slack:     set the request URL of the Slack app (event subscriptions, interactivity, slash
             command) to $URL/slack/events
  Teams:     set the Azure Bot's messaging endpoint to $URL/api/messages
  PagerDuty: add a v3 webhook subscription to $URL/webhooks/pagerduty
  DNS:       point your BOT_PUBLIC_URL name at $LB_DNS (CNAME or alias record)
  Console:   $URL/ ; sign in with the token in secret $APP_SECRET (key BOT_CONSOLE_TOKEN)
  Logs:      aws logs tail /incident-bot/$ENV_NAME --follow --region $REGION
EOF

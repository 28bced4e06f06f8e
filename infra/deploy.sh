#!/usr/bin/env bash
# `make deploy` (after `make package`): apply infra/ to Google Cloud, then upload
# site/ with config.js pointing at the deployed function.
#
#   make deploy PROJECT=my-project [REGION=us-central1] [AUTO_APPROVE=1]
#
# The project can also come from `project = "..."` in infra/terraform.tfvars.
# config.js is written into a temporary copy of site/, so the repository's
# copy (the local default address) is never changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
ZIP="$ROOT/build/function.zip"

die() {
  echo "deploy: $*" >&2
  exit 1
}

command -v terraform >/dev/null 2>&1 ||
  die "terraform not found: install Terraform 1.5 or newer (https://developer.hashicorp.com/terraform/install) and run make deploy again"
command -v gcloud >/dev/null 2>&1 ||
  die "gcloud not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), run gcloud auth login, then make deploy again"
token="$(gcloud auth print-access-token 2>/dev/null)" ||
  die "gcloud has no credentials: run gcloud auth login, then make deploy again"

# Terraform reads Application Default Credentials; without them, lend it the
# gcloud login so one `gcloud auth login` is enough.
if [ -z "${GOOGLE_APPLICATION_CREDENTIALS:-}${GOOGLE_CREDENTIALS:-}${GOOGLE_OAUTH_ACCESS_TOKEN:-}" ] &&
  ! gcloud auth application-default print-access-token >/dev/null 2>&1; then
  export GOOGLE_OAUTH_ACCESS_TOKEN="$token"
fi

PROJECT="${PROJECT:-${GOOGLE_CLOUD_PROJECT:-}}"
tf_vars=(-var "function_zip=$ZIP")
if [ -n "$PROJECT" ]; then
  tf_vars+=(-var "project=$PROJECT")
elif ! grep -Eqs '^[[:space:]]*project[[:space:]]*=' "$INFRA/terraform.tfvars"; then
  die "no project given: run make deploy PROJECT=<your-gcp-project-id>, or put project = \"<id>\" in infra/terraform.tfvars"
fi
if [ -n "${REGION:-}" ]; then
  tf_vars+=(-var "region=$REGION")
fi

[ -f "$ZIP" ] || die "$ZIP is missing: run make package (make deploy runs it first)"
[ -f "$ROOT/site/index.html" ] || die "$ROOT/site/index.html is missing: restore site/ with git checkout -- site/"

terraform -chdir="$INFRA" init -input=false
if [ "${AUTO_APPROVE:-}" = 1 ]; then
  terraform -chdir="$INFRA" apply -input=false -auto-approve "${tf_vars[@]}"
else
  terraform -chdir="$INFRA" apply "${tf_vars[@]}" # asks before changing anything
fi

function_url="$(terraform -chdir="$INFRA" output -raw function_url)"
site_url="$(terraform -chdir="$INFRA" output -raw site_url)"
site_bucket="$(terraform -chdir="$INFRA" output -raw site_bucket)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$ROOT/site/." "$stage/"
printf 'window.HANDWRITING_CONFIG = { apiUrl: "%s" };\n' "$function_url" >"$stage/config.js"

# no-cache: browsers revalidate, so a redeploy (new config.js, new modules) shows at
# once instead of after the bucket's default hour of caching.
gcloud storage rsync "$stage" "gs://$site_bucket" --recursive --delete-unmatched-destination-objects \
  --cache-control="no-cache"

echo
echo "function: $function_url   (try: curl $function_url/health)"
echo "site:     $site_url"

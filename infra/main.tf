# The handwriting-recognition API as a 2nd-gen Cloud Function, and the web page
# as static files in a public bucket. `make deploy` (infra/deploy.sh) applies this
# and uploads site/ with the function's address in config.js.

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  site_bucket   = "${var.project}-${var.name_prefix}-site"
  source_bucket = "${var.project}-${var.name_prefix}-source"

  # The page is served as https://storage.googleapis.com/<bucket>/index.html, so
  # the Origin header a browser sends with its API calls is the storage host alone
  # (an origin has no path). Any other public bucket's page shares that origin:
  # CORS here only keeps other sites' pages from reading answers in a browser, the
  # API itself stays public on purpose.
  site_origin     = "https://storage.googleapis.com"
  site_url        = "${local.site_origin}/${local.site_bucket}/index.html"
  allowed_origins = length(var.allowed_origins) > 0 ? var.allowed_origins : [local.site_origin]

  # The instance cap: enough instances for the spike, each planned at var.instance_requests_per_second,
  # but never more than the cost ceiling pays for at full load; var.max_instances overrides both.
  # A busy instance's hour: its CPU and memory, and the per-request fee on what it answers in that hour.
  busy_instance_hourly_usd = var.instance_hourly_cost_usd + var.instance_requests_per_second * 3600 * var.request_fee_usd_per_million / 1e6
  spike_instances          = ceil(var.spike_requests_per_second / var.instance_requests_per_second)
  budget_instances         = floor(var.max_hourly_cost_usd / local.busy_instance_hourly_usd)
  max_instances            = coalesce(var.max_instances, max(1, min(local.spike_instances, local.budget_instances)))

  services = [
    "artifactregistry.googleapis.com", # the function's container image
    "cloudbuild.googleapis.com",       # builds that image from the source zip
    "cloudfunctions.googleapis.com",
    "iam.googleapis.com", # the function's own service account
    "run.googleapis.com", # 2nd-gen functions run as Cloud Run services
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = toset(local.services)

  service            = each.value
  disable_on_destroy = false # other things in the project may use them too
}

# An API is not always usable the moment it is enabled (the provider's guide to
# google_project_service says so): what uses one waits for this, so the first
# apply on a new project does not fail on it.
resource "time_sleep" "apis_ready" {
  create_duration = "60s"

  depends_on = [google_project_service.apis]
}

# --- the function -----------------------------------------------------------

resource "google_storage_bucket" "source" {
  name                        = local.source_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  depends_on = [time_sleep.apis_ready]
}

# The object name carries the zip's md5, so a changed zip is a new object and
# Terraform redeploys the function; an unchanged one (package.py is
# deterministic) changes nothing. Without the zip (`terraform destroy` on a fresh
# clone) the name is a placeholder, so destroy still runs.
resource "google_storage_bucket_object" "source" {
  name   = "function-${fileexists(var.function_zip) ? filemd5(var.function_zip) : "absent"}.zip"
  bucket = google_storage_bucket.source.name
  source = var.function_zip
}

# The function needs no Google Cloud permissions at all; its own account keeps
# it from running as the project's default account, which is often an editor.
resource "google_service_account" "function" {
  account_id   = "${var.name_prefix}-fn"
  display_name = "Handwriting recognition function (no roles)"

  depends_on = [time_sleep.apis_ready]
}

# Cloud Build turns the zip into the function's image. Projects made since July
# 2024 give its default account (the Compute Engine default) no roles, so the
# build would fail there: it runs as an account of its own with what a
# function's build needs (Google's "Custom service account for Cloud Build":
# build logs, the image in Artifact Registry, the source in Cloud Storage).
resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "Handwriting recognition function's build"

  depends_on = [time_sleep.apis_ready]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"])

  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

# A new grant takes a moment to reach every Google service; a build started at
# once may still be refused.
resource "time_sleep" "build_roles_ready" {
  create_duration = "30s"

  depends_on = [google_project_iam_member.build]
}

resource "google_cloudfunctions2_function" "api" {
  name        = "${var.name_prefix}-api"
  location    = var.region
  description = "Handwritten digit and character recognition (TFLite)"

  build_config {
    runtime         = var.runtime
    entry_point     = "predict"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
        # Given, not left to the provider: else the generation kept from the last
        # deploy goes with a new zip and the apply fails with "inconsistent final
        # plan" (hashicorp/terraform-provider-google#19134).
        generation = google_storage_bucket_object.source.generation
      }
    }
  }

  # One vCPU runs one gunicorn worker (one Python process: more would only share the vCPU) with
  # var.concurrency threads, and Cloud Run sends each instance that many requests at once. Sizes and the
  # instance cap come from bench/RESULTS.md; infra/README.md ("Capacity") explains them.
  service_config {
    available_cpu                    = var.cpu
    available_memory                 = var.memory
    max_instance_request_concurrency = var.concurrency
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = var.min_instances
    max_instance_count               = local.max_instances
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function.email

    environment_variables = {
      ALLOWED_ORIGINS      = join(",", local.allowed_origins)
      WORKERS              = "1"                       # functions-framework's gunicorn processes (var.cpu says why one)
      THREADS              = tostring(var.concurrency) # its threads: one per request Cloud Run sends at once
      GOOGLE_CLOUD_PROJECT = var.project               # names the trace in each request's log line
    }
  }

  lifecycle {
    precondition {
      condition     = tonumber(var.cpu) >= 1 || var.concurrency == 1
      error_message = "Cloud Run serves more than one request at once only with at least 1 vCPU: set cpu to 1 or more, or concurrency to 1."
    }
  }

  depends_on = [time_sleep.build_roles_ready]
}

# Public, unauthenticated invoke. A 2nd-gen function is served by a Cloud Run
# service, and that service is where the invoker role has to be granted.
resource "google_cloud_run_service_iam_member" "public_invoke" {
  location = google_cloudfunctions2_function.api.location
  service  = google_cloudfunctions2_function.api.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- the site ---------------------------------------------------------------

resource "google_storage_bucket" "site" {
  name                        = local.site_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "inherited"
  force_destroy               = true

  # Used when the bucket is served under its own domain (a bucket named after
  # a CNAME'd domain, or behind a load balancer); storage.googleapis.com/<bucket>/
  # paths need the file name, hence site_url ends in index.html.
  website {
    main_page_suffix = "index.html"
    not_found_page   = "index.html"
  }

  cors {
    origin          = local.allowed_origins
    method          = ["GET", "HEAD"]
    response_header = ["Content-Type"]
    max_age_seconds = 3600
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "site_public_read" {
  bucket = google_storage_bucket.site.name
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}

variable "project" {
  description = "Google Cloud project id to deploy into (required: PROJECT=... for make deploy, or project in terraform.tfvars)."
  type        = string
}

variable "region" {
  description = "Region for the function and both buckets."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix for every resource name; bucket names also get the project id in front, as they are global."
  type        = string
  default     = "handwriting"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "function_zip" {
  description = "The source zip built by `make package` (relative paths are relative to infra/)."
  type        = string
  default     = "../build/function.zip"
}

variable "runtime" {
  description = "Cloud Functions Python runtime; keep it at the Python the package is rehearsed with (tests/test_package.py)."
  type        = string
  default     = "python311"
}

variable "cpu" {
  description = "vCPUs per instance, as a number (1, or 0.5 with concurrency 1). An instance runs one gunicorn worker, one Python process that uses one vCPU at most (memory and instance_requests_per_second are sized for it): more traffic takes more instances, not more vCPUs. Cloud Run needs at least 1 for concurrency above 1 (a precondition checks it)."
  type        = string
  default     = "1"

  validation {
    condition     = can(tonumber(var.cpu)) && tonumber(var.cpu) > 0 && tonumber(var.cpu) <= 1
    error_message = "cpu must be a number of vCPUs above 0 and at most 1 (e.g. \"1\" or \"0.5\", not \"500m\"): the instance's one worker uses one vCPU at most."
  }
}

variable "memory" {
  description = "Memory per instance. gunicorn's master and one worker with 8 threads hold about 140-150 MB warm, and the worker peaked at 168 MB with eight of the costliest requests at once (bench/RESULTS.md): 512Mi leaves room for both."
  type        = string
  default     = "512Mi"
}

variable "concurrency" {
  description = "Requests one instance serves at once (Cloud Run's max_instance_request_concurrency, and the worker's THREADS). On one vCPU throughput does not grow past 1 (bench/RESULTS.md, N threads at concurrency N); 8 lets an instance absorb a burst of 8 (p99 about 30 ms) instead of starting new instances for it."
  type        = number
  default     = 8

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be 1 to 1000 (Cloud Run's range)."
  }
}

variable "min_instances" {
  description = "Instances kept running while idle. 0: nothing runs while nobody draws, and the first request after a quiet spell waits for a cold start. 1: no cold start for that request, for one idle instance around the clock (infra/README.md)."
  type        = number
  default     = 0
}

variable "spike_requests_per_second" {
  description = "The burst the instance cap is sized for (requests/s)."
  type        = number
  default     = 500
}

variable "instance_requests_per_second" {
  description = "What one instance (1 vCPU, 8 at once) is planned to answer: about 60 % of what one worker with 8 threads answered for canvas PNGs in bench/RESULTS.md (355/s), as Cloud Run adds instances near 60 % CPU. Text-mode requests cost several times more."
  type        = number
  default     = 210
}

variable "max_hourly_cost_usd" {
  description = "Cost ceiling: the instance cap never exceeds what this pays per hour with every instance busy (CPU, memory and the request fee)."
  type        = number
  default     = 2
}

variable "instance_hourly_cost_usd" {
  description = "One busy instance's CPU and memory (1 vCPU, 512 MiB) per hour at Cloud Run's tier-1 list prices for request-based billing: 3600 x (0.000024 per vCPU-second + 0.5 x 0.0000025 per GiB-second); the request fee is added (request_fee_usd_per_million). Check the pricing page for your region."
  type        = number
  default     = 0.0909
}

variable "request_fee_usd_per_million" {
  description = "Cloud Run's fee per million requests with request-based billing (tier 1 list price; the first 2 million a month are free). Counted in the cost ceiling at instance_requests_per_second for every busy instance."
  type        = number
  default     = 0.40
}

variable "max_instances" {
  description = "Upper bound on instances. null: the smaller of what the spike needs and what the cost ceiling pays for (infra/README.md, Capacity)."
  type        = number
  default     = null
}

variable "timeout_seconds" {
  description = "Request timeout; a recognition takes milliseconds, a cold start a few seconds."
  type        = number
  default     = 30
}

variable "allowed_origins" {
  description = "Origins allowed to call the function from a browser (CORS). Empty: the site bucket's origin, https://storage.googleapis.com. Set it when the site is served from another domain."
  type        = list(string)
  default     = []
}

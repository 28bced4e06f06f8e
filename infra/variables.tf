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

variable "memory" {
  description = "Memory per instance: the two int8 models, numpy and Pillow fit well within 512M."
  type        = string
  default     = "512M"
}

variable "max_instances" {
  description = "Upper bound on instances, which caps the bill when the public endpoint gets busy."
  type        = number
  default     = 3
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

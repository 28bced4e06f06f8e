output "function_url" {
  description = "HTTPS address of the recognition API (GET /health, POST /predict)."
  value       = google_cloudfunctions2_function.api.url
}

output "site_url" {
  description = "Address of the web page."
  value       = local.site_url
}

output "site_bucket" {
  description = "Bucket the deploy script uploads site/ to."
  value       = google_storage_bucket.site.name
}

output "allowed_origins" {
  description = "Origins the function answers CORS requests for."
  value       = local.allowed_origins
}

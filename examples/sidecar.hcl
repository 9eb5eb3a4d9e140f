# Sidecar: openhqm in the pod of a legacy app, with Redis holding the queue and
# the results, so a restart loses nothing and separate worker Deployments
# (worker.hcl) can take jobs off the same stream. Secrets come from the
# environment (a Kubernetes Secret) or from files mounted into the pod.
#
#   REDIS_URL             redis://redis:6379 (default redis://127.0.0.1:6379)
#   LEGACY_APP_TOKEN      bearer token openhqm presents to the app
#   BILLING_API_KEY       API key of the billing service
#   ORDERS_CLIENT_TOKEN   token clients present to submit orders

# The operator's pages (/-/config, /-/routes, POST /-/reload, /metrics and the
# probes) are on :8001, a port of their own: do not publish it in the Service,
# and let only Prometheus and the kubelet reach it.
server {
  listen        = ":8000"
  admin_listen  = ":8001"
  max_body_size = "10MiB"
  read_timeout  = "30s"
}

# The app in the same pod.
endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  timeout         = "30s"
  max_concurrency = 64
  max_pending     = 256
  headers         = { "X-Service" = "openhqm" }
  auth {
    type  = "bearer"
    token = env("LEGACY_APP_TOKEN")
  }
}

# A billing service that wants an API key in its own header.
endpoint "billing" {
  url     = "http://billing.internal:9000/v2"
  timeout = "20s"
  auth {
    type   = "api_key"
    header = "X-Billing-Key"
    token  = env("BILLING_API_KEY")
  }
}

# A reporting service behind HTTP basic authentication.
endpoint "reports" {
  url             = "http://reports.internal:8081"
  timeout         = "2m"
  max_concurrency = 4
  auth {
    type     = "basic"
    username = "openhqm"
    password = env("REPORTS_PASSWORD", "change-me")
  }
}

# An inventory service that reads a tenant header.
endpoint "inventory" {
  url = "http://inventory.internal:8082"
  auth {
    type   = "header"
    header = "X-Tenant"
    token  = "acme"
  }
}

queue "jobs" {
  backend = "redis"
  redis {
    url    = env("REDIS_URL", "redis://127.0.0.1:6379")
    stream = "openhqm-requests"
    group  = "openhqm-workers"
  }
  max_depth   = 100000
  lease       = "5m"
  dead_letter = "openhqm-dlq"
}

results {
  backend = "redis"
  ttl     = "1h"
  redis {
    url = env("REDIS_URL", "redis://127.0.0.1:6379")
  }
}

# Several routes share /api/orders: writes become jobs, reads stay synchronous.
route "orders-write" {
  match {
    methods     = ["POST", "PUT"]
    path_prefix = "/api/orders"
    headers     = { "X-Tenant" = "acme" }
  }
  mode       = "async"
  endpoint   = "legacy"
  queue      = "jobs"
  idempotent = true
  timeout    = "120s"
  retry {
    attempts = 5
    backoff  = "exponential"
    on       = ["connect", "timeout", "5xx", "429"]
  }
  client_auth {
    type   = "bearer"
    tokens = [env("ORDERS_CLIENT_TOKEN")]
  }
  rate_limit {
    requests_per_second = 200
    burst               = 400
  }
}

route "orders-read" {
  match {
    methods     = ["GET", "HEAD"]
    path_prefix = "/api/orders"
  }
  mode     = "sync"
  endpoint = "legacy"
  rate_limit {
    requests_per_second = 1000
  }
}

route "order-cancel" {
  match {
    methods = ["DELETE"]
    path    = "/api/orders/{id}"
  }
  mode     = "async"
  endpoint = "legacy"
  queue    = "jobs"
  retry {
    attempts = 3
    backoff  = "constant"
    initial  = "5s"
    on       = ["connect", "5xx"]
  }
}

route "invoices" {
  match {
    path_prefix = "/api/invoices"
  }
  mode     = "auto"
  endpoint = "billing"
  queue    = "jobs"
  client_auth {
    type   = "api_key"
    header = "X-API-Key"
    tokens = [env("ORDERS_CLIENT_TOKEN")]
  }
}

route "reports" {
  match {
    methods     = ["GET"]
    path_prefix = "/api/reports"
  }
  mode     = "async"
  endpoint = "reports"
  queue    = "jobs"
  timeout  = "4m"
}

route "stock" {
  match {
    path_prefix = "/api/stock"
  }
  mode     = "sync"
  endpoint = "inventory"
}

route "default" {
  match {
    path_prefix = "/"
  }
  mode     = "sync"
  endpoint = "legacy"
}

# The original OpenHQM's JSON API, for clients written against it.
submit_api {
  endpoint = "legacy"
  queue    = "jobs"
  client_auth {
    type   = "bearer"
    tokens = [env("ORDERS_CLIENT_TOKEN")]
  }
}

# The pod also works off jobs; more workers scale with worker.hcl.
worker {
  embedded    = true
  concurrency = 16
  batch_size  = 10
  drain       = "30s"
}

telemetry {
  log_level  = "info"
  log_format = "json"
  metrics    = true
}

# The example of the design document, verbatim as far as the language goes: its orders route
# times out after 120s, inside the 5m lease of its queue.
server {
  listen        = ":8000"
  admin_listen  = ""              # empty: admin paths are served on the main listener under /-/
  admin_token   = env("OPENHQM_ADMIN_TOKEN")   # bearer for introspection and control on the main listener
  max_body_size = "10MiB"
  read_timeout  = "30s"
}

endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  timeout         = "30s"
  max_concurrency = 64            # protects the app; excess waits up to max_pending, then 503
  max_pending     = 256
  headers         = { "X-Service" = "openhqm" }
  auth {                          # outbound credentials injected toward the app
    type  = "bearer"              # bearer | api_key | basic | header | none
    token = env("LEGACY_APP_TOKEN")
    # api_key and header: header = "X-API-Key"; basic: username, password
  }
}

queue "jobs" {
  backend = "redis"               # memory | redis | kafka (sqs and more later)
  redis {
    url    = env("REDIS_URL", "redis://127.0.0.1:6379")
    stream = "openhqm-requests"
    group  = "openhqm-workers"
  }
  max_depth   = 100000            # backpressure: above it, submits get 503 + Retry-After
  lease       = "5m"              # a job held longer than this by a dead worker is redelivered; longer than any route timeout using the queue
  dead_letter = "openhqm-dlq"
}

results {
  backend = "redis"               # memory | redis
  ttl     = "1h"                  # counted from completion; expired ids answer 410
  max_body_size = "10MiB"         # a stored answer above it fails the job with a clear reason
  redis { url = env("REDIS_URL", "redis://127.0.0.1:6379") }
}

route "orders" {
  match {
    methods     = ["POST", "PUT"]
    path_prefix = "/api/orders"     # or path = "/exact", or path = "/users/{id}" templates
    headers     = { "X-Tenant" = "acme" }
  }
  mode     = "async"              # sync | async | auto (sync unless the client sends Prefer: respond-async)
  endpoint = "legacy"
  queue    = "jobs"
  retry {
    attempts = 5
    backoff  = "exponential"      # initial 1s, max 1m, full jitter; upstream Retry-After is honoured
    on       = ["connect", "timeout", "5xx", "429"]
  }
  idempotent = true               # replay is safe; non-idempotent methods are never retried after an ambiguous failure unless this says so
  timeout    = "120s"             # overrides the endpoint's
  client_auth {                   # who may call this route, and read the results of its jobs
    type   = "bearer"             # bearer | api_key | none
    tokens = [env("ORDERS_CLIENT_TOKEN")]
  }
  rate_limit {
    requests_per_second = 200     # above it: 429 + Retry-After
    burst               = 400
  }
}

route "default" {
  match { path_prefix = "/" }
  mode     = "sync"
  endpoint = "legacy"
}

submit_api {                      # the original OpenHQM's JSON API: POST /api/v1/submit, GET /api/v1/status|response/{id}
  endpoint = "legacy"             # where a submit goes unless its metadata.endpoint names another endpoint
  queue    = "jobs"
}

worker {
  embedded    = true              # serve runs the pool in-process
  concurrency = 16
  batch_size  = 10
  drain       = "30s"
  listen      = ":9090"           # health and metrics of a standalone `openhqm worker`
}

telemetry {
  log_level  = "info"
  log_format = "json"
  metrics    = true
}

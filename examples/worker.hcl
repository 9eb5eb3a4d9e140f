# Worker: a separately scaled Deployment of `openhqm worker` that takes jobs
# off the Redis stream the sidecars (sidecar.hcl) write to and replays them
# against the endpoints. It needs the endpoints, the queue, the results store
# and the routes (their retry policies and timeouts); it serves no traffic
# itself, only /health, /-/readyz and /metrics on worker.listen.
#
#   openhqm worker -c examples/worker.hcl --name "$POD_NAME"

endpoint "legacy" {
  url             = "http://legacy-app.default.svc:8080"
  timeout         = "30s"
  max_concurrency = 32
  auth {
    type  = "bearer"
    token = env("LEGACY_APP_TOKEN")
  }
}

queue "jobs" {
  backend = "redis"
  redis {
    url    = env("REDIS_URL", "redis://127.0.0.1:6379")
    stream = "openhqm-requests"
    group  = "openhqm-workers"
  }
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

route "orders-write" {
  match {
    methods     = ["POST", "PUT"]
    path_prefix = "/api/orders"
  }
  mode       = "async"
  endpoint   = "legacy"
  queue      = "jobs"
  idempotent = true
  timeout    = "120s"
  retry {
    attempts = 5
    backoff  = "exponential"
  }
}

worker {
  embedded    = false
  concurrency = 32
  batch_size  = 10
  drain       = "60s"
  listen      = ":9090"
  queues      = ["jobs"]
}

telemetry {
  log_level  = "info"
  log_format = "json"
  metrics    = true
}

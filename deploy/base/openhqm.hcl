# openhqm configuration shared by the sidecar (`openhqm serve`) and the worker
# Deployment (`openhqm worker`). It is mounted from the ConfigMap "openhqm-config"
# as the directory /etc/openhqm (no subPath), so edits hot-reload in both.
#
# One file serves both processes:
#   - the sidecar reaches the app on localhost (APP_URL unset: the default below);
#   - the workers reach it through the Service legacy-app-internal (their
#     Deployment sets APP_URL=http://legacy-app-internal:8080).
# REDIS_URL comes from the Secret redis-credentials (key connection-string), the
# Secret the original OpenHQM manifests already use. OPENHQM_ADMIN_TOKEN comes
# from the Secret openhqm-admin (key token): the bearer that /-/config,
# /-/routes and POST /-/reload require on port 8000, where the probes and
# /metrics stay open for the kubelet and Prometheus.

server {
  listen        = ":8000"
  admin_listen  = ""
  admin_token   = env("OPENHQM_ADMIN_TOKEN")
  max_body_size = "10MiB"
  read_timeout  = "30s"
}

endpoint "legacy" {
  url             = env("APP_URL", "http://127.0.0.1:8080")
  timeout         = "30s"
  max_concurrency = 64
  max_pending     = 256
}

queue "jobs" {
  backend = "redis"
  redis {
    url    = env("REDIS_URL")
    stream = "openhqm-requests"
    group  = "openhqm-workers"
  }
  max_depth   = 100000
  lease       = "60s"
  dead_letter = "openhqm-dlq"
}

results {
  backend = "redis"
  ttl     = "1h"
  redis {
    url = env("REDIS_URL")
  }
}

# Requests that ask for it (Prefer: respond-async) become jobs; everything else
# is proxied synchronously, as before openhqm was added.
route "default" {
  match {
    path_prefix = "/"
  }
  mode     = "auto"
  endpoint = "legacy"
  queue    = "jobs"
}

# The original OpenHQM API: POST /api/v1/submit, GET /api/v1/status|response/{id}.
submit_api {
  endpoint = "legacy"
  queue    = "jobs"
}

worker {
  embedded    = false
  concurrency = 16
  batch_size  = 10
  drain       = "30s"
  listen      = ":9090"
}

telemetry {
  log_level  = "info"
  log_format = "json"
  metrics    = true
}

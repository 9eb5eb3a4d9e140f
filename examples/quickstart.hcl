# Quickstart: openhqm in front of the example app, with nothing else to install.
# The queue and the results live in memory and the worker pool runs inside
# `openhqm serve`, so jobs are lost on restart: use sidecar.hcl in production.
#
#   go run ./examples/legacyapp &                     # the app on 127.0.0.1:8080
#   openhqm serve -c examples/quickstart.hcl          # openhqm on :8000
#   curl -i localhost:8000/hello                      # proxied synchronously
#   curl -i -X POST localhost:8000/api/orders -d '{"item":"book"}'
#                                                     # 202 Accepted + Location
#   curl -i localhost:8000/-/requests/<id>/response   # the app's answer, later
#   curl -s localhost:9090/-/routes                   # the operator's pages, on loopback

# The operator's pages (/-/config, /-/routes, POST /-/reload, /metrics) are on
# a listener of their own that only this machine reaches. In a pod, either
# keep it that way or serve them on :8000 to a bearer token instead:
#   admin_token = env("OPENHQM_ADMIN_TOKEN")
server {
  listen       = ":8000"
  admin_listen = "127.0.0.1:9090"
}

endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  timeout         = "30s"
  max_concurrency = 32
}

queue "jobs" {
  backend = "memory"
  lease   = "60s"
}

results {
  backend = "memory"
  ttl     = "1h"
}

# Orders are accepted at once and replayed against the app by the worker pool.
route "orders" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/orders"
  }
  mode     = "async"
  endpoint = "legacy"
  queue    = "jobs"
  retry {
    attempts = 3
    backoff  = "exponential"
  }
}

# A slow report answers synchronously unless the client sends
# "Prefer: respond-async".
route "slow" {
  match {
    path = "/api/slow"
  }
  mode     = "auto"
  endpoint = "legacy"
  queue    = "jobs"
  timeout  = "10s"
}

# Everything else is proxied as it is.
route "default" {
  match {
    path_prefix = "/"
  }
  mode     = "sync"
  endpoint = "legacy"
}

worker {
  embedded    = true
  concurrency = 4
}

telemetry {
  log_level  = "info"
  log_format = "text"
}

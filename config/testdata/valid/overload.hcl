# A legacy app that cannot take more than 4 requests at once and sometimes
# goes down: sync requests that find it saturated or down become jobs.
endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  max_concurrency = 4
  max_pending     = 8
  circuit_breaker {
    failures = 3
    open_for = "1s"
    probe    = "/health"
  }
}

queue "jobs" {
  backend = "memory"
}

route "orders" {
  match {
    path_prefix = "/orders"
  }
  mode        = "auto"
  on_overload = "queue"
  endpoint    = "legacy"
  queue       = "jobs"
}

route "reports" {
  match {
    path_prefix = "/reports"
  }
  on_overload = "queue"
  endpoint    = "legacy"
  queue       = "jobs"
}

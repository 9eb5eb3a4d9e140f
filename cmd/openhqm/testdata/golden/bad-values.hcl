endpoint "legacy" {
  url     = "ftp://127.0.0.1:8080"
  timeout = "30 seconds"
}

queue "jobs" {
  backend = "memory"
  lease   = "60s"
}

route "orders" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/orders"
  }
  mode     = "async"
  endpoint = "legacy"
  queue    = "jobs"
  timeout  = "5m"
  retry {
    attempts = 0
  }
}

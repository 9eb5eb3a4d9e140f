endpoint "legacy" {
  url = "http://127.0.0.1:8080"
}

queue "jobs" {
  backend = "memory"
}

route "orders" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/orders"
  }
  mode     = "async"
  endpoint = "legacyy"
  queue    = "jobs"
}

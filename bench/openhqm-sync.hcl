# openhqm under `make bench`: one endpoint, one synchronous catch-all route.
server {
  listen = "127.0.0.1:18000"
}

endpoint "app" {
  url             = "http://127.0.0.1:19000"
  timeout         = "10s"
}

route "all" {
  match { path_prefix = "/" }
  mode     = "sync"
  endpoint = "app"
}

telemetry {
  log_level = "warn"
}

endpoint "app" {
  url     = "http://127.0.0.1:8080"
  timeout = "5m"   # ERROR: Timeout longer than lease
}
queue "jobs" {
  backend = "memory"
  lease   = "60s"
}
submit_api {
  endpoint = "app"
  queue    = "jobs"
}

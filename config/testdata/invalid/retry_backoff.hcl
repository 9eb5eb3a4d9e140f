endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
route "a" {
  match { path = "/a" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
  retry {
    backoff = "linear"   # ERROR: Invalid backoff
  }
}

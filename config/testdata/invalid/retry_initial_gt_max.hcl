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
    initial = "2m"
    max     = "30s"   # ERROR: Invalid retry delay
  }
}

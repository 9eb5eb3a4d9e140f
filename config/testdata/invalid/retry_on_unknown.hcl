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
    on = ["connect", "5XX", "4xx"]   # ERROR: Invalid retry condition # ERROR: Invalid retry condition
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
route "a" {
  match { path = "/a" }
  endpoint = "app"
  queue    = "jobs"   # WARNING: Queue on a sync route
}

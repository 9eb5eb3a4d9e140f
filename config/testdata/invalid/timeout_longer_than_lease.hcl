endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" { lease = "30s" }
route "a" {
  match { path = "/a" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
  timeout  = "2m"   # ERROR: Timeout longer than lease
}

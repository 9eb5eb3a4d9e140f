endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
route "a" {   # ERROR: Missing queue
  match { path = "/a" }
  mode     = "async"   # ERROR: Missing queue
  endpoint = "app"
}

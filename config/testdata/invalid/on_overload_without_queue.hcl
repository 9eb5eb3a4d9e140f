endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
route "a" {
  match { path = "/a" }
  on_overload = "queue"   # ERROR: Missing queue
  endpoint    = "app"
}

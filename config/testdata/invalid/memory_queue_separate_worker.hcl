endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" { backend = "memory" }
worker { embedded = false }   # ERROR: Memory queue with a separate worker
route "a" {
  match { path = "/a" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"   # ERROR: Memory queue with a separate worker
}
submit_api {
  endpoint = "app"
  queue    = "jobs"   # ERROR: Memory queue with a separate worker
}

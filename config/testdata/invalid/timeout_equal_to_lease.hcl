endpoint "app" {
  url = "http://127.0.0.1:8080"
}
# The redelivery would race the end of the request: a timeout must be shorter than the lease.
queue "jobs" { lease = "2m" }
route "a" {
  match { path = "/a" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
  timeout  = "2m"   # ERROR: Timeout longer than lease
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "slow" {
  url     = "http://127.0.0.1:9090"
  timeout = "5m"   # ERROR: Timeout longer than lease
}
queue "jobs" {}
route "a" {
  match { path = "/a" }
  mode     = "auto"
  endpoint = "slow"
  queue    = "jobs"
}

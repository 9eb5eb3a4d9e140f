endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
submit_api {
  endpoint = "legacy"   # ERROR: Unknown endpoint
  queue    = "jbos"   # ERROR: Unknown queue
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
worker {
  queues = ["jobs", "other"]   # ERROR: Unknown queue
}

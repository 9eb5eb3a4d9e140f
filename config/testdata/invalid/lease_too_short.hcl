endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {
  lease = "500ms"   # ERROR: Invalid lease
}

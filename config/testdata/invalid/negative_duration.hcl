endpoint "app" {
  url = "http://127.0.0.1:8080"
}
worker {
  drain = "-5s"   # ERROR: Invalid duration
}

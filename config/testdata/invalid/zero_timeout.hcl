endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url     = "http://127.0.0.1:9090"
  timeout = "0s"   # ERROR: Invalid timeout
}

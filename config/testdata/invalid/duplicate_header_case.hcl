endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url     = "http://127.0.0.1:9090"
  headers = {
    "X-Service" = "a"
    "x-service" = "b"   # ERROR: Duplicate header
  }
}

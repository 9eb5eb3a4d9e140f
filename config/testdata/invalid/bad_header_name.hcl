endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url     = "http://127.0.0.1:9090"
  headers = {
    "X-Ok"       = "1"
    "X Bad Name" = "2"   # ERROR: Invalid header name
  }
}

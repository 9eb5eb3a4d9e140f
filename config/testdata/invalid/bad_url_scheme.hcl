endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = "ftp://127.0.0.1:9090"   # ERROR: Invalid URL
}

endpoint "app" {   # ERROR: Duplicate endpoint
  url = "http://127.0.0.1:9090"
}

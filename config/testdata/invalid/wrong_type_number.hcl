endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url             = "http://127.0.0.1:9090"
  max_concurrency = "many"   # ERROR: Incorrect attribute value type
}

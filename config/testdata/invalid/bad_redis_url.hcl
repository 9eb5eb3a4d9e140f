endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {
    url = "http://127.0.0.1:6379"   # ERROR: Invalid URL
  }
}

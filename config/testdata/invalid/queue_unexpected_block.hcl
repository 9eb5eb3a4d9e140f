endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "memory"
  redis {   # ERROR: Unexpected redis block
    url = "redis://127.0.0.1:6379"
  }
}

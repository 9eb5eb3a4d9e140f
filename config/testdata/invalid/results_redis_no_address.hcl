endpoint "app" {
  url = "http://127.0.0.1:8080"
}
results {
  backend = "redis"
  redis {   # ERROR: Missing Redis address
    min_replicas = 1
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {   # ERROR: Missing Redis address
    stream = "jobs"
  }
}

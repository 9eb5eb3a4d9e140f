endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {
    cluster {
      addrs = ["127.0.0.1:7000"]
    }
    shards       = 0    # ERROR: Value out of range
    min_replicas = -1   # ERROR: Value out of range
  }
}

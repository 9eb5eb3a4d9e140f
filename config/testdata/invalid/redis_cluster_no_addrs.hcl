endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {
    cluster {
      addrs = []   # ERROR: Missing addresses
    }
  }
}

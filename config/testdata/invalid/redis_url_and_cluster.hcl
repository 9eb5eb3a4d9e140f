endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {
    url = "redis://127.0.0.1:6390"
    cluster {   # ERROR: Conflicting Redis addresses
      addrs = ["127.0.0.1:7000"]
    }
  }
}

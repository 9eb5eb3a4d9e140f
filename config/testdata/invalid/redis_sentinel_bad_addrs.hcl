endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {
    sentinel {
      master_name = ""                                  # ERROR: Empty name
      addrs       = ["127.0.0.1:26390", "sentinel-1"]   # ERROR: Invalid address
    }
  }
}

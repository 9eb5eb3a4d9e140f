endpoint "app" {
  url = "http://127.0.0.1:8080"
}
results {
  backend = "redis"
  redis {
    sentinel {
      master_name = "mymaster"
      addrs       = ["127.0.0.1:26390"]
    }
    cluster {   # ERROR: Conflicting Redis addresses
      addrs = ["127.0.0.1:7000"]
    }
  }
}

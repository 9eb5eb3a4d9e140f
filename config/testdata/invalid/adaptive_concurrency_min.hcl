endpoint "app" {
  url             = "http://127.0.0.1:8080"
  max_concurrency = 8
  adaptive_concurrency {
    min = 0            # ERROR: Value out of range
  }
}
route "a" {
  match { path = "/a" }
  endpoint = "app"
}

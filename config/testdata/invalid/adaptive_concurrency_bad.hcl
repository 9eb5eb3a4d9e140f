endpoint "app" {
  url             = "http://127.0.0.1:8080"
  max_concurrency = 8
  adaptive_concurrency {
    min       = 9      # ERROR: Invalid min
    tolerance = 0.5    # ERROR: Invalid tolerance
  }
}
endpoint "free" {
  url = "http://127.0.0.1:8081"
  adaptive_concurrency { # ERROR: Adaptive concurrency without a ceiling
  }
}
route "a" {
  match { path = "/a" }
  endpoint = "app"
}
route "b" {
  match { path = "/b" }
  endpoint = "free"
}

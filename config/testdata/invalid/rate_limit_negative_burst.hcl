endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/a" }
  endpoint = "app"
  rate_limit {
    requests_per_second = 10
    burst               = -1   # ERROR: Invalid rate limit
  }
}

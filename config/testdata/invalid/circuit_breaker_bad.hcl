endpoint "app" {
  url = "http://127.0.0.1:8080"
  circuit_breaker {
    failures = 0          # ERROR: Value out of range
    open_for = "0s"       # ERROR: Invalid open_for
    probe    = "health"   # ERROR: Invalid probe path
  }
}
route "a" {
  match { path = "/a" }
  endpoint = "app"
}

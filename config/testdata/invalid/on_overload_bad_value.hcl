endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/a" }
  on_overload = "spill"   # ERROR: Invalid on_overload
  endpoint    = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/a" }
  mode     = "asynch"   # ERROR: Invalid mode
  endpoint = "app"
}

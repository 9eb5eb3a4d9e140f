endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {   # ERROR: Missing queue
  match { path = "/a" }
  mode     = "auto"   # ERROR: Missing queue
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/a" }
  endpoint = "app"
}
route "a" {   # ERROR: Duplicate route
  match { path = "/b" }
  endpoint = "app"
}

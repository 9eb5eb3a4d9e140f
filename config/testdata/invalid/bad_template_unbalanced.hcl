endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/users/{id" }   # ERROR: Invalid path template
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/files/{name}.json" }   # ERROR: Invalid path template
  endpoint = "app"
}

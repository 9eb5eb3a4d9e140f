endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "health" {
  match { path = "/health" }   # WARNING: Route shadowed by a reserved path
  endpoint = "app"
}
route "dash" {
  match { path_prefix = "/-/things" }   # WARNING: Route shadowed by a reserved path
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {}
submit_api {
  endpoint = "app"
  queue    = "jobs"
}
route "status" {
  match { path = "/api/v1/status/{id}" }   # WARNING: Route shadowed by a reserved path
  endpoint = "app"
}

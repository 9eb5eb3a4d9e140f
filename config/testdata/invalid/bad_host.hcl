endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match {
    path  = "/a"
    hosts = ["api.example.com:8443"]   # ERROR: Invalid host
  }
  endpoint = "app"
}

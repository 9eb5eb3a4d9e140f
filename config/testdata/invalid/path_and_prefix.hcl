endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match {
    path        = "/a"
    path_prefix = "/a"   # ERROR: Conflicting path conditions
  }
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match {
    methods = [
      "POST",
      "PSOT",   # ERROR: Invalid HTTP method
    ]
    path = "/a"
  }
  endpoint = "app"
}

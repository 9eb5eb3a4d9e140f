endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match {
    methods = "GET"   # ERROR: Incorrect attribute value type
    path    = "/a"
  }
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match {
    path    = "/a"
    headers = { "X-Tenant" = "~(acme" }   # ERROR: Invalid regular expression
  }
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "tenant" {   # WARNING: Shadowed route
  match {
    path    = "/a"
    headers = { "X-Tenant" = "acme" }
  }
  endpoint = "app"
}
route "any" {
  priority = 10
  match { path = "/a" }
  endpoint = "app"
}
route "tenant-post" {   # WARNING: Shadowed route
  match {
    path    = "/a"
    methods = ["POST"]
  }
  endpoint = "app"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match { path = "/a" }
  endpoint = "app"
  transform {
    body    = "{id: .id"   # ERROR: Invalid jq expression
    headers = { "X-Tenant" = ".tenant" }
    query   = {
      page = ".page |"   # ERROR: Invalid jq expression
    }
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "all-orders" {
  match { path_prefix = "/api/orders" }
  endpoint = "app"
}
route "post-orders" {   # WARNING: Shadowed route
  match {
    methods     = ["POST"]
    path_prefix = "/api/orders/"
  }
  endpoint = "app"
}

route "orders-a" {
  match {
    path_prefix = "/orders"
    hosts       = ["shop.example.com"]
  }
  endpoint = "app"
}

route "orders-b" {   # ERROR: Routes match the same requests
  match {
    path_prefix = "/orders/"
    hosts       = ["SHOP.example.com"]
  }
  endpoint = "apps"   # ERROR: Unknown endpoint
}

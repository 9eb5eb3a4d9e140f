endpoint "legacy" {
  url = "http://127.0.0.1:8080"
}

route "default" {
  match {
    path_prefix = "/"
  }
  endpoint = "legacy"
}

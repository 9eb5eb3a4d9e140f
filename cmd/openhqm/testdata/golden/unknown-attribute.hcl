endpoint "legacy" {
  url     = "http://127.0.0.1:8080"
  timeout = "30s"
}

route "default" {
  match {
    path_prefx = "/"
  }
  endpoint = "legacy"
}

endpoint "legacy" {
  url = "http://127.0.0.1:8080"
  auth {
    type  = "bearer"
    token = env("LEGACY_APP_TOKEN")
  }
}

route "default" {
  match {
    path_prefix = "/"
  }
  endpoint = "legacy"
}

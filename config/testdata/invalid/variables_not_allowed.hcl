endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = var.app_url   # ERROR: Variables not allowed
}

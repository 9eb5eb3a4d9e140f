endpoint "app" {
  url = "http://127.0.0.1:8080"
}
server {   # WARNING: Admin pages not served
  listen = "8000"   # ERROR: Invalid listen address
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
server {   # WARNING: Admin pages not served
  max_body_size = "10 megabytes"   # ERROR: Invalid size
}

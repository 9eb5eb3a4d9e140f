endpoint "app" {
  url = "http://127.0.0.1:8080"
}
server {   # WARNING: Admin pages not served
  admin_listen = ":99999"   # ERROR: Invalid listen address
}
worker {
  listen = "localhost"   # ERROR: Invalid listen address
}

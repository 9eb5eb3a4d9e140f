endpoint "app" {
  url = "http://127.0.0.1:8080"
}
server {   # WARNING: Admin pages not served
  read_timeout = "1 minute"   # ERROR: Invalid duration
}

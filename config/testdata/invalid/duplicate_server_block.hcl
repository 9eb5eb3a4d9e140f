endpoint "app" {
  url = "http://127.0.0.1:8080"
}
server { listen = ":8000" }   # WARNING: Admin pages not served
server { listen = ":8001" }   # ERROR: Duplicate server block

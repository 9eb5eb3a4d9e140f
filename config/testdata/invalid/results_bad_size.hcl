endpoint "app" {
  url = "http://127.0.0.1:8080"
}
results {
  max_body_size = "-1MiB"   # ERROR: Invalid size
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
results {
  ttl = "0s"   # ERROR: Invalid ttl
}

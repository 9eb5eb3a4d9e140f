endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = "http://user:pw@127.0.0.1:8080"   # ERROR: Invalid URL
}

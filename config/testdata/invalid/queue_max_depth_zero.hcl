endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  max_depth = 0   # ERROR: Value out of range
}

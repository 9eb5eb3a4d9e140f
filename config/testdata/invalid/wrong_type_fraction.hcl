endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  max_depth = 10.5   # ERROR: Incorrect attribute value type
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
worker {
  embedded = "sometimes"   # ERROR: Incorrect attribute value type
}

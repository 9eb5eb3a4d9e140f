endpoint "app" {
  url = "http://127.0.0.1:8080"
}
worker {
  concurrency = 0   # ERROR: Value out of range
  batch_size  = 0   # ERROR: Value out of range
}

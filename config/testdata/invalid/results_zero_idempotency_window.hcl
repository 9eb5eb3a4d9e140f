endpoint "app" {
  url = "http://127.0.0.1:8080"
}
results {
  idempotency_window = "0s"   # ERROR: Invalid idempotency window
}

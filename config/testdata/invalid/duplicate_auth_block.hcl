endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = "http://127.0.0.1:9090"
  auth {
    type = "none"
  }
  auth {   # ERROR: Duplicate auth block
    type = "none"
  }
}

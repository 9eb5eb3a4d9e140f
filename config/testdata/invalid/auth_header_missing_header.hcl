endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = "http://127.0.0.1:9090"
  auth {   # ERROR: Incomplete auth block
    type  = "header"
    token = "t"
  }
}

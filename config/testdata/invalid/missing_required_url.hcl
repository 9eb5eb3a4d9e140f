endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {   # ERROR: Missing required argument
  timeout = "5s"
}

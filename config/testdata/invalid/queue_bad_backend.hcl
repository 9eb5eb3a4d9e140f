endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "rabbitmq"   # ERROR: Invalid queue backend
}

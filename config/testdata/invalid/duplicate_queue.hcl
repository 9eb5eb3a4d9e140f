endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {}
queue "q" {   # ERROR: Duplicate queue
  lease = "30s"
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "k" {
  backend = "kafka"
  kafka {   # ERROR: Missing required argument
    topic = "jobs"
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "redis"
  redis {
    url = "redis://127.0.0.1:6379"
  }
  sqs {   # ERROR: Unexpected sqs block
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
}

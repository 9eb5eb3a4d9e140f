endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "a" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
    region    = "us-east-1"   # ERROR: Region mismatch
  }
}
queue "b" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
    region    = "Ireland"   # ERROR: Invalid region
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "standard" {
  backend = "sqs"
  sqs {
    queue_url  = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
    key_header = "X-Tenant"   # WARNING: Key header has no effect
  }
}
queue "fifo" {
  backend = "sqs"
  sqs {
    queue_url  = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo"
    key_header = "X Tenant"   # ERROR: Invalid header name
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "sqs"
  sqs {
    queue_url = "http://localhost:4100/100010001000/jobs"
    region    = "us-east-1"
    endpoint  = "localhost:4100"   # ERROR: Invalid URL
    protocol  = "xml"              # ERROR: Invalid protocol
  }
}

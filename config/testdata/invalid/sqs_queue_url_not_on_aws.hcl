endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "sqs"
  sqs {
    queue_url = "http://localhost:4100/100010001000/jobs"   # WARNING: Queue URL not on AWS
    region    = "us-east-1"
  }
}

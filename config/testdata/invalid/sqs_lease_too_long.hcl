endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
  lease = "13h"   # ERROR: Lease too long
}

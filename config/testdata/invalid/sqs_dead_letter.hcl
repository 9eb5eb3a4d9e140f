endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "a" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
  dead_letter = "jobs"   # ERROR: Dead-letter queue is the queue
}
queue "b" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
  dead_letter = "failed jobs"   # ERROR: Invalid queue name
}
queue "c" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
  dead_letter = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq"   # ERROR: Region mismatch
}
queue "d" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
  dead_letter = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"   # ERROR: Dead-letter queue is the queue
}
queue "e" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  }
  dead_letter = ""   # ERROR: Empty name
}

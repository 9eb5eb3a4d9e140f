endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "a" {
  backend = "sqs"
  sqs {
    queue_url = "sqs.eu-west-1.amazonaws.com/123456789012/jobs"   # ERROR: Invalid URL
  }
}
queue "b" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/jobs"   # ERROR: Invalid URL
  }
}
queue "c" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/my.jobs"   # ERROR: Invalid URL
  }
}
queue "d" {
  backend = "sqs"
  sqs {
    queue_url = "https://AKIA:secret@sqs.eu-west-1.amazonaws.com/123456789012/jobs"   # ERROR: Invalid URL
  }
}
queue "e" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs?Action=SendMessage"   # ERROR: Invalid URL
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "sqs"
  sqs {   # ERROR: Missing required argument
    region = "eu-west-1"
  }
}

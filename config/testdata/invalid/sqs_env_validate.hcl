# The queue URL comes from the pod's environment, which CI does not have:
# validate warns and checks nothing that depends on it.
endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "q" {
  backend = "sqs"
  sqs {
    queue_url = env("SQS_QUEUE_URL")   # WARNING: Missing environment variable
    region    = env("AWS_REGION", "eu-west-1")
  }
  dead_letter = env("SQS_DEAD_LETTER", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq")
}

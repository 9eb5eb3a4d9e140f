# SQS queues: one on AWS (region from its URL, dead letters in a queue named
# by URL), one FIFO queue (default dead-letter queue "orders-dlq.fifo", jobs
# grouped by tenant), and one on an SQS-compatible server that speaks only
# the Query protocol, with separate workers consuming all of them.
endpoint "app" { url = "http://127.0.0.1:8080" }

queue "jobs" {
  backend = "sqs"
  sqs {
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/openhqm-jobs"
  }
  lease       = "5m"
  max_depth   = 50000
  dead_letter = "https://sqs.eu-west-1.amazonaws.com/123456789012/openhqm-failed"
}

queue "orders" {
  backend = "sqs"
  sqs {
    queue_url  = "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo"
    region     = "us-east-1"
    protocol   = "json"
    key_header = "x-tenant"
  }
  lease = "12h"
}

queue "local" {
  backend = "sqs"
  sqs {
    queue_url = "http://127.0.0.1:4100/100010001000/local"
    region    = "elsewhere"
    endpoint  = "http://127.0.0.1:4100"
    protocol  = "query"
  }
  dead_letter = "local_failed"
}

results {
  backend = "redis"
  redis { url = "redis://redis.default.svc:6379" }
}

route "jobs" {
  match { path_prefix = "/jobs" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}

route "orders" {
  match { path_prefix = "/orders" }
  mode     = "async"
  endpoint = "app"
  queue    = "orders"
}

route "local" {
  match { path_prefix = "/local" }
  mode     = "async"
  endpoint = "app"
  queue    = "local"
}

worker {
  embedded = false
}

# SQS: the sidecar (`openhqm serve`) sends async requests to an Amazon SQS
# queue and a separately scaled Deployment of `openhqm worker` replays them;
# both read this file. No broker to run: on EKS the pods get AWS credentials
# from their ServiceAccount (IRSA or EKS Pod Identity) through the AWS SDK's
# default chain; this file holds none. docs/sqs.md lists the IAM actions.
#
#   openhqm serve  -c examples/sqs.hcl
#   openhqm worker -c examples/sqs.hcl --name "$POD_NAME"

endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  timeout         = "30s"
  max_concurrency = 32
}

queue "jobs" {
  backend = "sqs"
  sqs {
    # The region comes from the URL.
    queue_url = env("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/openhqm-requests")
  }
  # openhqm's lease, whatever the queue's VisibilityTimeout: a job held by a
  # dead worker comes back after it.
  lease     = "5m"
  max_depth = 100000
  # A queue in the same account and region; SQS's own RedrivePolicy on
  # openhqm-requests (say maxReceiveCount 20) stays a safety net for jobs
  # that crash their worker every time.
  dead_letter = "openhqm-requests-dlq"
}

# Workers in other pods write results that serve answers from: Redis.
results {
  backend = "redis"
  ttl     = "1h"
  redis {
    url = env("REDIS_URL", "redis://127.0.0.1:6379")
  }
}

route "orders" {
  match {
    methods     = ["POST", "PUT"]
    path_prefix = "/api/orders"
  }
  mode       = "async"
  endpoint   = "legacy"
  queue      = "jobs"
  idempotent = true
  timeout    = "120s"
  retry {
    attempts = 5
  }
}

route "default" {
  match {
    path_prefix = "/"
  }
  mode     = "sync"
  endpoint = "legacy"
}

worker {
  embedded    = false
  concurrency = 32
  batch_size  = 10
  drain       = "60s"
  listen      = ":9090"
}

# openhqm under `make bench` (async, sqs): every POST to /jobs becomes a job;
# workers run as separate `openhqm worker` processes. The queue is served by
# bench/goaws, which speaks only SQS's Query protocol; credentials come from
# the environment run.sh sets (goaws checks no signature).
server {
  listen = "127.0.0.1:18010"
}

endpoint "app" {
  url     = "http://127.0.0.1:19000"
  timeout = "10s"
}

queue "jobs" {
  backend = "sqs"
  sqs {
    queue_url = "http://127.0.0.1:19324/100010001000/openhqm-bench"
    region    = "us-east-1"
    endpoint  = "http://127.0.0.1:19324"
    protocol  = "query"
  }
  max_depth = 10000000
  lease     = "30s"
}

results {
  backend = "redis"
  redis {
    url = "redis://127.0.0.1:16390"
  }
  ttl = "10m"
}

route "jobs" {
  match {
    path_prefix = "/jobs"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}

worker {
  embedded    = false
  concurrency = 64
  batch_size  = 50
  listen      = "127.0.0.1:18020"
}

telemetry {
  log_level = "warn"
}

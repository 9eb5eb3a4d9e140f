# openhqm under `make bench` (async, redis): every POST to /jobs becomes a job;
# workers run as separate `openhqm worker` processes.
server {
  listen = "127.0.0.1:18010"
}

endpoint "app" {
  url     = "http://127.0.0.1:19000"
  timeout = "10s"
}

queue "jobs" {
  backend = "redis"
  redis {
    url    = "redis://127.0.0.1:16390"
    stream = "openhqm-bench"
    group  = "openhqm-bench"
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
  batch_size  = 64
  listen      = "127.0.0.1:18020"
}

telemetry {
  log_level = "warn"
}

# A standalone worker: jobs come from Redis, so worker.embedded is false.
endpoint "app" { url = "http://127.0.0.1:8080" }

queue "jobs" {
  backend = "redis"
  redis { url = "rediss://redis.default.svc:6380/2" }
}

results {
  backend = "redis"
  redis { url = "redis://redis.default.svc:6379" }
}

route "jobs" {
  match { path_prefix = "/" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}

worker {
  embedded = false
  queues   = ["jobs"]
}

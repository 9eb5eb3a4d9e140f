# Redis with Sentinel: the sidecar (`openhqm serve`) and a separately scaled
# `openhqm worker` Deployment share a queue and the results on a Redis primary
# with two replicas, watched by three sentinels. When the primary dies, the
# sentinels promote a replica and openhqm follows it: submits answer 503 for
# the few seconds of the failover, never 202 for a job that is then lost,
# and the workers carry on with the new primary.
#
#   openhqm serve  -c examples/redis-sentinel.hcl
#   openhqm worker -c examples/redis-sentinel.hcl --name "$POD_NAME"

endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  timeout         = "30s"
  max_concurrency = 32
}

queue "jobs" {
  backend = "redis"
  redis {
    sentinel {
      master_name = "mymaster"
      addrs       = ["redis-sentinel-0.redis:26379", "redis-sentinel-1.redis:26379", "redis-sentinel-2.redis:26379"]
      password    = env("REDIS_PASSWORD", "")
    }
    stream = "openhqm-requests"
    group  = "openhqm-workers"
    # A job is answered 202 only once a replica holds it too, so the replica
    # promoted after the primary's death has every accepted job. Two
    # replicas: the promoted one still has one to confirm writes.
    min_replicas = 1
  }
  lease     = "5m"
  max_depth = 100000
}

results {
  backend = "redis"
  ttl     = "1h"
  redis {
    sentinel {
      master_name = "mymaster"
      addrs       = ["redis-sentinel-0.redis:26379", "redis-sentinel-1.redis:26379", "redis-sentinel-2.redis:26379"]
      password    = env("REDIS_PASSWORD", "")
    }
    min_replicas = 1
  }
}

route "orders" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/orders"
  }
  mode     = "async"
  endpoint = "legacy"
  queue    = "jobs"
}

route "default" {
  match {
    path_prefix = "/"
  }
  endpoint = "legacy"
}

worker {
  embedded = false
}

# Redis Cluster: the queue is split over six streams (shards), each under its
# own hash tag, so the cluster spreads them over its primaries and a queue
# scales past one Redis core. Producers take the shards in turn and skip, for
# a second at a time, one whose primary fails; workers read every shard in
# turn. Jobs keep their order within a shard only.
#
#   openhqm serve -c examples/redis-cluster.hcl

endpoint "legacy" {
  url             = "http://127.0.0.1:8080"
  timeout         = "30s"
  max_concurrency = 64
}

queue "jobs" {
  backend = "redis"
  redis {
    cluster {
      # Any few nodes: the client discovers the others.
      addrs    = ["redis-cluster-0.redis-cluster:6379", "redis-cluster-1.redis-cluster:6379", "redis-cluster-2.redis-cluster:6379"]
      password = env("REDIS_PASSWORD", "")
    }
    # TLS with the system's CAs; ca_file = "/etc/redis-tls/ca.crt" trusts a
    # private CA instead.
    tls {}
    shards       = 6
    min_replicas = 1
  }
  lease     = "5m"
  max_depth = 120000 # each shard holds at most a sixth
}

results {
  backend = "redis"
  ttl     = "1h"
  redis {
    cluster {
      addrs    = ["redis-cluster-0.redis-cluster:6379", "redis-cluster-1.redis-cluster:6379", "redis-cluster-2.redis-cluster:6379"]
      password = env("REDIS_PASSWORD", "")
    }
    tls {}
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
  embedded    = true
  concurrency = 32
}

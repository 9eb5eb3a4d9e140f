# Every block and attribute of the language, with values that are all valid.
server {
  listen        = "0.0.0.0:8000"
  admin_listen  = ":8001"
  max_body_size = "512KB"
  read_timeout  = "1m30s"
  write_timeout = "2m"
  idle_timeout  = "120s"
}

endpoint "legacy" {
  url             = "http://legacy.default.svc:8080/v1"
  timeout         = "45s"
  max_concurrency = 8
  headers         = { "X-Service" = "openhqm", X-Env = "prod" }
  auth {
    type   = "api_key"
    token  = env("LEGACY_APP_TOKEN")
    header = "X-Legacy-Key"
  }
}

endpoint "billing" {
  url         = "https://billing.example.com"
  max_pending = 10
  auth {
    type   = "header"
    header = "X-Auth"
    token  = env("BILLING_TOKEN", "dev-token")
  }
}

endpoint "public" {
  url = "http://[::1]:9000"
  auth { type = "none" }
}

queue "events" {
  backend = "kafka"
  kafka {
    brokers     = ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]
    topic       = "openhqm-events"
    group       = "openhqm-events-workers"
    retry_topic = "openhqm-events-later"
    version     = "3.6.0"
    key_header  = "x-tenant"
    tls {
      insecure_skip_verify = true
    }
    sasl {
      mechanism = "SCRAM-SHA-512"
      username  = "openhqm"
      password  = env("KAFKA_PASSWORD", "")
    }
  }
  max_depth       = 5000
  lease           = "5m"
  dead_letter_max = 100
}

queue "mem" {}

results {
  backend     = "memory"
  ttl         = "30m"
  max_entries = 1000
  prefix      = "ignored-for-memory:"
  max_body_size = "2MiB"
  idempotency_window = "2h"
}

route "user" {
  priority = 5
  match {
    methods = ["get", "HEAD"]
    hosts   = ["API.example.com", "*.example.org"]
    path    = "/users/{id}"
    headers = { "X-Tenant" = "~acme|globex", Accept = "application/json" }
  }
  endpoint = "legacy"
}

route "events" {
  match {
    methods     = ["POST"]
    path_prefix = "/events"
    jq          = ".type == \"order\""
  }
  mode       = "auto"
  endpoint   = "billing"
  queue      = "events"
  idempotent = true
  timeout    = "4m"
  retry {
    attempts = 10
    backoff  = "constant"
    initial  = "500ms"
    max      = "5s"
    on       = ["5xx"]
  }
  client_auth {
    type   = "api_key"
    header = "X-Client-Key"
    tokens = ["k1", env("ORDERS_CLIENT_TOKEN")]
  }
  rate_limit { requests_per_second = 2.5 }
  transform {
    body    = "{order: .id, items: .items}"
    headers = { "X-Order" = ".id | tostring" }
    query   = { tenant = ".tenant" }
  }
}

route "other-events" {
  match { path_prefix = "/events" }
  mode     = "async"
  endpoint = "public"
  queue    = "mem"
}

route "health" {
  match { path = "/health" }
  endpoint = "public"
}

submit_api {
  endpoint = "legacy"
  queue    = "events"
  retry { attempts = 1 }
  client_auth {
    type   = "bearer"
    tokens = ["submitter"]
  }
}

worker {
  concurrency = 4
  batch_size  = 1
  drain       = "0s"
  listen      = "127.0.0.1:9091"
  queues      = ["events", "mem"]
}

telemetry {
  log_level  = "debug"
  log_format = "text"
  metrics    = false
}

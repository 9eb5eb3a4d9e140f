# Content routing, as the original OpenHQM did it: the JSON body of a request
# chooses the route (a jq expression that must yield true), and a route may
# rewrite the request from the body before it reaches the app.
#
#   curl -X POST localhost:8000/api/events \
#     -d '{"type":"invoice","tenant":"acme","customer_id":"c-42","payload":{"amount":12}}'

endpoint "billing" {
  url = "http://127.0.0.1:8080"
}

endpoint "legacy" {
  url = "http://127.0.0.1:8080"
}

queue "jobs" {
  backend = "memory"
}

# Invoices go to billing as jobs; only the payload is forwarded, the tenant
# becomes a header and the customer a query parameter.
route "invoice-events" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/events"
    jq          = ".type == \"invoice\""
  }
  priority = 10
  mode     = "async"
  endpoint = "billing"
  queue    = "jobs"
  transform {
    body    = ".payload"
    headers = { "X-Tenant" = ".tenant" }
    query   = { "customer" = ".customer_id" }
  }
}

# Urgent events of any type are proxied at once.
route "urgent-events" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/events"
    jq          = ".priority == \"high\""
  }
  priority = 5
  mode     = "sync"
  endpoint = "legacy"
}

# Every other event is queued unchanged.
route "events" {
  match {
    methods     = ["POST"]
    path_prefix = "/api/events"
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

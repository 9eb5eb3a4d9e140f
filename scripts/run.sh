#!/usr/bin/env bash
# Starts the example legacy app and openhqm in front of it (make run).
# Stops both on Ctrl-C.
set -euo pipefail
bin=${1:-bin}
app_addr=${APP_ADDR:-127.0.0.1:8080}

"$bin/legacyapp" -addr "$app_addr" &
app=$!
trap 'kill "$app" 2>/dev/null; wait "$app" 2>/dev/null || true' EXIT

cat <<MSG

openhqm is starting on :8000 in front of the example app on $app_addr.
Try, from another terminal:

  curl -i localhost:8000/hello                                   # synchronous: proxied at once
  curl -i -X POST localhost:8000/api/orders -d '{"sku":"A-1","qty":2}'   # async: 202 + Location
  curl -i localhost:8000/-/requests/<id>                         # the job's status
  curl -i localhost:8000/-/requests/<id>/response                # the app's own answer
  curl -i -X POST localhost:8000/api/orders -H 'Prefer: wait=5' -d '{"sku":"B-2"}'   # wait for it
  curl -i localhost:8000/api/slow -H 'Prefer: respond-async'     # a slow path, as a job
  curl -s localhost:9090/-/routes; curl -s localhost:9090/metrics | grep openhqm_   # the operator's port, loopback only

MSG
"$bin/openhqm" serve -c examples/quickstart.hcl

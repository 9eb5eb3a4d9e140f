# A worker configuration: nothing here writes to the queue, but the separate
# worker would consume it, and it lives in another process's memory.
endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "jobs" {
  backend = "memory"
}
worker {
  embedded = false   # ERROR: Memory queue with a separate worker
}

# The configuration `openhqm serve` runs with when it is given no file and no
# OPENHQM_* variable: the app on 127.0.0.1:8080 behind every path, sync unless
# the client sends Prefer: respond-async, with a memory queue, memory results
# and the embedded worker. It is loaded like any other file, so its defaults
# are the language's own.

endpoint "app" {
  url = "http://127.0.0.1:8080"
}

queue "default" {
  backend = "memory"
}

route "default" {
  match {
    path_prefix = "/"
  }
  mode     = "auto"
  endpoint = "app"
  queue    = "default"
}

submit_api {
  endpoint = "app"
  queue    = "default"
}

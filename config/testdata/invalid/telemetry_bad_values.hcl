endpoint "app" {
  url = "http://127.0.0.1:8080"
}
telemetry {
  log_level  = "verbose"   # ERROR: Invalid log level
  log_format = "logfmt"   # ERROR: Invalid log format
}

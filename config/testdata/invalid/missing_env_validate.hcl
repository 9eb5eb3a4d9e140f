endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = "http://127.0.0.1:9090"
  auth {
    type  = "bearer"
    token = env("NOT_SET_ANYWHERE")   # WARNING: Missing environment variable
  }
}

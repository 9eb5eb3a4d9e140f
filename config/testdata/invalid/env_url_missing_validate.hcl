endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = env("APP_URL")   # WARNING: Missing environment variable
}

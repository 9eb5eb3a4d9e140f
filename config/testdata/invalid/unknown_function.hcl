endpoint "app" {
  url = "http://127.0.0.1:8080"
}
endpoint "b" {
  url = envv("APP_URL")   # ERROR: Call to unknown function
}

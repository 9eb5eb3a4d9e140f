server {
  listen       = ":8000"
  admin_listen = "127.0.0.1:8001"
}

endpoint "app" {
  url     = "https://app.internal:8443/base"
  timeout = "10s"
  auth {
    type     = "basic"
    username = "svc"
    password = file("../../secrets/app-password")
  }
}

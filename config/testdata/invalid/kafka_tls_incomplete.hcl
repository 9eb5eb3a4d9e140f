endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "k" {
  backend = "kafka"
  kafka {
    brokers = ["kafka-0:9092"]
    tls {   # ERROR: Incomplete client certificate
      cert_file = "/dev/null"
    }
  }
}

endpoint "app" {
  url = "http://127.0.0.1:8080"
}
queue "k" {
  backend = "kafka"
  kafka {
    brokers = ["kafka-0:9092"]
    version = "latest"   # ERROR: Invalid Kafka version
    sasl {
      mechanism = "SCRAM-SHA-1"   # ERROR: Invalid SASL mechanism
      username  = "u"
      password  = "p"
    }
  }
}

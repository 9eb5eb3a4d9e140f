endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {
  match {
    methods = ["GET", "POST"]
    path    = "/users/{id}"
  }
  endpoint = "app"
}
route "b" {   # ERROR: Routes match the same requests
  match {
    methods = ["POST", "GET"]
    path    = "/users/{user}"
  }
  endpoint = "app"
}

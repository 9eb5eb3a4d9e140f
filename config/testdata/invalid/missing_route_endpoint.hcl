endpoint "app" {
  url = "http://127.0.0.1:8080"
}
route "a" {   # ERROR: Missing required argument
  match { path = "/a" }
}

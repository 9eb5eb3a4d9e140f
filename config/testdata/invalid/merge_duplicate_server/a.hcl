server {
  listen = ":8000"
}

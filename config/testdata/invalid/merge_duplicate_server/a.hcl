server {   # WARNING: Admin pages not served
  listen = ":8000"
}

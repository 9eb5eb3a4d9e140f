server {   # ERROR: Duplicate server block
  listen = ":8001"
}

-- wrk script of `make bench` (async): POST a 1 KiB JSON body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"data":"' .. string.rep("x", 1013) .. '"}'

// Package upstream is an endpoint as a client: one fasthttp HostClient per
// endpoint, reused across configuration generations while its address is
// unchanged, the injection of the endpoint's credentials and static
// headers, deadlines, and the max_concurrency / max_pending limiter shared
// by everything in the process that calls the endpoint. Errors are
// classified into sentinels (connect, timeout, reset, overloaded) whose
// wrapped detail never reaches a client.
package upstream

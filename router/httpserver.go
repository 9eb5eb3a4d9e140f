package router

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/connguard"
	"github.com/valyala/fasthttp"
)

// Defaults applied by NewHTTPServer when the configuration leaves a timeout
// at zero: fasthttp's zero means "no limit", which lets slow clients hold
// connections forever.
const (
	defaultReadTimeout  = 30 * time.Second
	defaultWriteTimeout = 30 * time.Second
	defaultIdleTimeout  = 60 * time.Second
)

// NewHTTPServer returns a fasthttp.Server for h with the listener settings of
// cfg: read, write and idle timeouts against slow clients, and the request
// body limit (a larger body answers 413 before h runs). These settings
// cannot change on reload; a new max_body_size lower than the one the
// listener started with is still enforced by Handler. Shut it down with
// ShutdownWithContext: it stops accepting, lets in-flight requests finish
// and closes idle keep-alive connections.
func NewHTTPServer(cfg config.Server, h fasthttp.RequestHandler, log *slog.Logger) *fasthttp.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	read, write, idle := cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout
	if read <= 0 {
		read = defaultReadTimeout
	}
	if write <= 0 {
		write = defaultWriteTimeout
	}
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	maxBody := int(cfg.MaxBodySize)
	if maxBody <= 0 {
		maxBody = 10 << 20
	}
	return &fasthttp.Server{
		Handler:               refuseConnect(h),
		Name:                  "openhqm",
		ReadTimeout:           read,
		WriteTimeout:          write,
		IdleTimeout:           idle,
		MaxRequestBodySize:    maxBody,
		ReadBufferSize:        8 << 10, // room for large cookies, like nginx's 8k header buffers
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         false,
		CloseOnShutdown:       true,
		ReduceMemoryUsage:     true,
		// fasthttp's parse errors quote the request (an Authorization
		// header, say); they reach the debug log, which must hold no secret.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{log},
		ErrorHandler:          serverError,
	}
}

// refuseConnect answers CONNECT 405 ahead of h: openhqm is a reverse proxy,
// never a tunnel, and an app must not be asked to open one. The connection
// closes, since the client may already be sending tunnel bytes.
func refuseConnect(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if ctx.IsConnect() {
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "CONNECT is not supported: openhqm is a reverse proxy, not a tunnel", nil)
			ctx.SetConnectionClose()
			return
		}
		h(ctx)
	}
}

// Listen wraps ln for a server of NewHTTPServer: the raw request stream of
// every connection is checked before the server parses it (see connguard),
// so a request with a malformed or ambiguous head or framing is answered 400
// and never reaches a handler; and at most cfg.MaxConnections connections
// are open at once (0: connguard.DefaultMaxConns), the newest above it
// answered 503 and closed. onReject, when set, is called for each of those.
func Listen(ln net.Listener, cfg config.Server, onReject func()) *connguard.Listener {
	limit := cfg.MaxConnections
	if limit <= 0 {
		limit = connguard.DefaultMaxConns()
	}
	return connguard.Wrap(ln, connguard.Options{MaxConns: limit, OnReject: onReject})
}

// serverError answers requests fasthttp rejects before the handler runs.
func serverError(ctx *fasthttp.RequestCtx, err error) {
	var code int
	var msg string
	var sizeErr *fasthttp.ErrSmallBuffer
	reason, malformed := connguard.IsMalformed(err)
	switch {
	case malformed:
		code, msg = fasthttp.StatusBadRequest, reason
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code, msg = fasthttp.StatusRequestEntityTooLarge, "request body too large"
	case errors.As(err, &sizeErr):
		code, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers too large"
	default:
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			code, msg = fasthttp.StatusRequestTimeout, "request not received in time"
		} else {
			code, msg = fasthttp.StatusBadRequest, "malformed request"
		}
	}
	writeError(ctx, code, msg, nil)
	ctx.SetConnectionClose()
	if code == fasthttp.StatusRequestEntityTooLarge {
		answerAndLinger(ctx) // the client may still be uploading
	}
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

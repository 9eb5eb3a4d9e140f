package router

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/openhqm/openhqm/config"
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
		Handler:               h,
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
		Logger:                fasthttpLogger{log},
		ErrorHandler:          serverError,
	}
}

// serverError answers requests fasthttp rejects before the handler runs.
func serverError(ctx *fasthttp.RequestCtx, err error) {
	var code int
	var msg string
	var sizeErr *fasthttp.ErrSmallBuffer
	switch {
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

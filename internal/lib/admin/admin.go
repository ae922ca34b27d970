package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check returns nil when its part is ready, else why it is not.
type Check func() error

// Server is an admin HTTP server.
type Server struct {
	mux    *http.ServeMux
	limits Limits
}

// New returns an admin server exposing gatherer at /metrics and the named
// readiness checks at /readyz, with DefaultLimits unless an option says
// otherwise.
func New(gatherer prometheus.Gatherer, checks map[string]Check, opts ...Option) *Server {
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var failed []string
		for _, n := range names {
			if err := checks[n](); err != nil {
				failed = append(failed, n+": "+err.Error())
			}
		}
		if len(failed) > 0 {
			http.Error(w, "not ready:\n"+strings.Join(failed, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	s := &Server{mux: mux, limits: DefaultLimits}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Handle registers h for pattern (http.ServeMux syntax, e.g.
// "GET /explain"), for a component's own admin endpoint. Call it before
// Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Serve serves on ln until ctx ends, then shuts down within 2s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	l := s.limits.withDefaults()
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes}
	lln := newLimitListener(ln, l.MaxConns)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve admin on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

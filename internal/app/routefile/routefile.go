package routefile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/causeway-mesh/causeway/internal/lib/filewatch"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is Config.Interval when unset.
const DefaultInterval = time.Second

// Config configures a Source.
type Config struct {
	// Path of the routes file. Required.
	Path string
	// Interval between checks of the file for changes. If zero,
	// DefaultInterval.
	Interval time.Duration
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; if nil, not registered.
	Registerer prometheus.Registerer
}

// Source serves the routes of a static routes file and follows its
// changes (Run). Its methods are safe for concurrent use.
type Source struct {
	path    string
	log     *slog.Logger
	metrics *metrics
	watch   filewatch.Watcher // owned by New, then by Run

	mu sync.Mutex // guards routes and changed
	// routes are the last good version's; never replaced by a bad one.
	routes []*l7route.Route
	// changed is closed (and replaced) when routes change.
	changed chan struct{}
}

var _ gateway.RouteSource = (*Source)(nil)

// Load reads and parses the routes file at path once (no reference
// checks). Errors name the file.
func Load(path string) ([]*l7route.Route, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read routes file: %w", err)
	}
	return parse(path, data)
}

func parse(path string, data []byte) ([]*l7route.Route, error) {
	routes, err := l7route.ParseStatic(data)
	if err != nil {
		return nil, fmt.Errorf("routes file %s: %w", path, err)
	}
	return routes, nil
}

// New loads the file of cfg.Path; it fails if the file cannot be read or
// is invalid. Run follows later changes.
func New(cfg Config) (*Source, error) {
	if cfg.Path == "" {
		return nil, errors.New("routes file: path required")
	}
	s := &Source{path: cfg.Path, log: cfg.Logger, changed: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	s.watch = filewatch.Watcher{Path: cfg.Path, What: "routes file", Interval: cfg.Interval, Apply: s.apply,
		Rejected: s.rejected, Recovered: s.recovered}
	if s.watch.Interval <= 0 {
		s.watch.Interval = DefaultInterval
	}
	if err := s.watch.Load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Routes returns the routes of the last good version of the file. The
// caller must not modify them.
func (s *Source) Routes() []*l7route.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes
}

// Changed returns a channel closed when Routes changes next.
func (s *Source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Run checks the file every Interval until ctx ends and publishes each new
// good version. A version that cannot be read or does not validate is
// logged and counted once (again only when the content, or the read
// error, changes), and the last good routes keep serving. It returns nil
// when ctx ends.
func (s *Source) Run(ctx context.Context) error { return s.watch.Run(ctx) }

// apply publishes a changed content of the file, if it parses.
func (s *Source) apply(data []byte) error {
	routes, err := parse(s.path, data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.routes = routes
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.metrics.reloads.WithLabelValues(resultLoaded).Inc()
	s.metrics.routes.Set(float64(len(routes)))
	s.log.Info("routes file loaded", "path", s.path, "routes", len(routes))
	return nil
}

func (s *Source) rejected(err error) {
	s.metrics.rejected.Set(1)
	s.metrics.reloads.WithLabelValues(resultRejected).Inc()
	s.log.Error("routes file not reloaded; the last good routes keep serving",
		"path", s.path, "serving_routes", len(s.Routes()), "err", err)
}

func (s *Source) recovered() {
	s.metrics.rejected.Set(0)
	s.log.Info("routes file valid again", "path", s.path, "routes", len(s.Routes()))
}

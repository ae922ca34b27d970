package routefile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/gateway/l7route"
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
	path     string
	interval time.Duration
	log      *slog.Logger
	metrics  *metrics

	afterCheck func() // test hook: called after every periodic check

	mu sync.Mutex // guards routes, changed and sum
	// routes are the last good version's; never replaced by a bad one.
	routes []*l7route.Route
	// changed is closed (and replaced) when routes change.
	changed chan struct{}
	// sum is the content hash of the version routes came from.
	sum [sha256.Size]byte
}

var _ gateway.RouteSource = (*Source)(nil)

// Load reads and parses the routes file at path once (no reference
// checks). Errors name the file.
func Load(path string) ([]*l7route.Route, error) {
	routes, _, err := load(path)
	return routes, err
}

// load is Load that also returns the content hash.
func load(path string) ([]*l7route.Route, [sha256.Size]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("read routes file: %w", err)
	}
	sum := sha256.Sum256(data)
	routes, err := parse(path, data)
	return routes, sum, err
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
	s := &Source{path: cfg.Path, interval: cfg.Interval, log: cfg.Logger, changed: make(chan struct{})}
	if s.interval <= 0 {
		s.interval = DefaultInterval
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	if s.routes, s.sum, err = load(s.path); err != nil {
		return nil, err
	}
	s.metrics.reloads.WithLabelValues(resultLoaded).Inc()
	s.metrics.routes.Set(float64(len(s.routes)))
	s.log.Info("routes file loaded", "path", s.path, "routes", len(s.routes))
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
func (s *Source) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	lastBad := "" // the rejected version last reported: content hash or read error
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		key, err := s.check()
		if s.afterCheck != nil {
			s.afterCheck()
		}
		switch {
		case err == nil:
			if lastBad != "" {
				s.metrics.rejected.Set(0)
				s.log.Info("routes file valid again", "path", s.path, "routes", len(s.Routes()))
			}
			lastBad = ""
			continue
		case key == lastBad:
			continue // reported already
		}
		lastBad = key
		s.metrics.rejected.Set(1)
		s.metrics.reloads.WithLabelValues(resultRejected).Inc()
		s.log.Error("routes file not reloaded; the last good routes keep serving",
			"path", s.path, "serving_routes", len(s.Routes()), "err", err)
	}
}

// check reads the file and publishes a new good version. For a bad
// version it returns the error and a key that identifies the version.
func (s *Source) check() (badKey string, err error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return "read:" + err.Error(), fmt.Errorf("read routes file: %w", err)
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	same := sum == s.sum
	s.mu.Unlock()
	if same {
		return "", nil
	}
	routes, err := parse(s.path, data)
	if err != nil {
		return "content:" + hex.EncodeToString(sum[:]), err
	}
	s.mu.Lock()
	s.routes, s.sum = routes, sum
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.metrics.reloads.WithLabelValues(resultLoaded).Inc()
	s.metrics.routes.Set(float64(len(routes)))
	s.log.Info("routes file loaded", "path", s.path, "routes", len(routes))
	return "", nil
}

package authzfile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/causeway-mesh/causeway/internal/lib/filewatch"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is Config.Interval when unset.
const DefaultInterval = time.Second

// Config configures a Source.
type Config struct {
	// Path of the authorization file. Required.
	Path string
	// Cluster and Domain are the local cluster and its clusterset domain:
	// the identities of the file are in trust domain <Cluster>.<Domain>.
	// Required.
	Cluster, Domain string
	// Interval between checks of the file for changes. If zero,
	// DefaultInterval.
	Interval time.Duration
	// Limiter configures the rate limiters. The zero value is valid.
	Limiter authz.LimiterConfig
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; if nil, not registered.
	Registerer prometheus.Registerer
}

// Source enforces the last good version of a static authorization file and
// follows its changes (Run). Its methods are safe for concurrent use.
type Source struct {
	path, cluster, domain string
	log                   *slog.Logger
	metrics               *metrics
	table                 *authz.Table
	resolver              atomic.Pointer[authz.StaticResolver]
	watch                 filewatch.Watcher // owned by New, then by Run
}

var (
	_ gateway.Authorizer   = (*Source)(nil)
	_ authz.SourceResolver = (*Source)(nil)
)

// Load reads and validates the authorization file at path once for cluster
// in domain. Errors name the file.
func Load(path, cluster, domain string) (*authz.Static, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read authorization file: %w", err)
	}
	return parse(path, data, cluster, domain)
}

func parse(path string, data []byte, cluster, domain string) (*authz.Static, error) {
	st, err := authz.ParseStatic(data, cluster, domain)
	if err != nil {
		return nil, fmt.Errorf("authorization file %s: %w", path, err)
	}
	return st, nil
}

// New loads the file of cfg.Path; it fails if the file cannot be read or
// is invalid. Run follows later changes.
func New(cfg Config) (*Source, error) {
	if cfg.Path == "" {
		return nil, errors.New("authorization file: path required")
	}
	s := &Source{path: cfg.Path, cluster: cfg.Cluster, domain: cfg.Domain, log: cfg.Logger, table: authz.NewTable(cfg.Limiter)}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	s.watch = filewatch.Watcher{Path: cfg.Path, What: "authorization file", Interval: cfg.Interval, Apply: s.apply,
		Rejected: s.rejected, Recovered: s.recovered}
	if s.watch.Interval <= 0 {
		s.watch.Interval = DefaultInterval
	}
	if err := s.watch.Load(); err != nil {
		return nil, err
	}
	return s, nil
}

// apply enforces a changed content of the file, if it validates.
// ParseStatic validated every entry, so the table takes all of them.
func (s *Source) apply(data []byte) error {
	st, err := parse(s.path, data, s.cluster, s.domain)
	if err != nil {
		return err
	}
	statuses, err := s.table.Update(st.Set, nil)
	if err == nil {
		err = authz.Errors(statuses)
	}
	if err != nil {
		return fmt.Errorf("authorization file %s: %w", s.path, err)
	}
	s.resolver.Store(st.Resolver)
	s.metrics.loaded(st)
	s.log.Info("authorization file loaded", "path", s.path, "default_action", string(s.table.Snapshot().DefaultAction()),
		"identities", st.Resolver.Len(), "policies", len(st.Set.Policies), "rate_limits", len(st.Set.RateLimits))
	return nil
}

// Snapshot returns the policies and rate limits being enforced.
func (s *Source) Snapshot() *authz.Snapshot { return s.table.Snapshot() }

// Resolve maps a local client address to its identity by the identities of
// the last good version.
func (s *Source) Resolve(addr netip.Addr) authz.Principal { return s.resolver.Load().Resolve(addr) }

// Run checks the file every Interval until ctx ends and enforces each new
// good version. A version that cannot be read or does not validate is
// logged and counted once (again only when the content, or the read
// error, changes), and the last good version stays enforced. It returns
// nil when ctx ends.
func (s *Source) Run(ctx context.Context) error { return s.watch.Run(ctx) }

func (s *Source) rejected(err error) {
	s.metrics.rejected.Set(1)
	s.metrics.reloads.WithLabelValues(resultRejected).Inc()
	s.log.Error("authorization file not reloaded; the last good version stays enforced", "path", s.path, "err", err)
}

func (s *Source) recovered() {
	s.metrics.rejected.Set(0)
	s.log.Info("authorization file valid again", "path", s.path)
}

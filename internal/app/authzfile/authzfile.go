package authzfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/gateway/authz"
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
	interval              time.Duration
	log                   *slog.Logger
	metrics               *metrics
	table                 *authz.Table
	resolver              atomic.Pointer[authz.StaticResolver]

	afterCheck func() // test hook: called after every periodic check

	mu  sync.Mutex        // guards sum and the order of updates
	sum [sha256.Size]byte // content hash of the version enforced
}

var (
	_ gateway.Authorizer   = (*Source)(nil)
	_ authz.SourceResolver = (*Source)(nil)
)

// Load reads and validates the authorization file at path once for cluster
// in domain. Errors name the file.
func Load(path, cluster, domain string) (*authz.Static, error) {
	st, _, err := load(path, cluster, domain)
	return st, err
}

// load is Load that also returns the content hash.
func load(path, cluster, domain string) (*authz.Static, [sha256.Size]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("read authorization file: %w", err)
	}
	sum := sha256.Sum256(data)
	st, err := parse(path, data, cluster, domain)
	return st, sum, err
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
	s := &Source{path: cfg.Path, cluster: cfg.Cluster, domain: cfg.Domain, interval: cfg.Interval,
		log: cfg.Logger, table: authz.NewTable(cfg.Limiter)}
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
	st, sum, err := load(s.path, s.cluster, s.domain)
	if err != nil {
		return nil, err
	}
	if err := s.apply(st, sum); err != nil {
		return nil, err
	}
	return s, nil
}

// apply enforces a parsed version. ParseStatic validated every entry, so
// the table takes all of them.
func (s *Source) apply(st *authz.Static, sum [sha256.Size]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	statuses, err := s.table.Update(st.Set, nil)
	if err == nil {
		err = authz.Errors(statuses)
	}
	if err != nil {
		return fmt.Errorf("authorization file %s: %w", s.path, err)
	}
	s.resolver.Store(st.Resolver)
	s.sum = sum
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
				s.log.Info("authorization file valid again", "path", s.path)
			}
			lastBad = ""
			continue
		case key == lastBad:
			continue // reported already
		}
		lastBad = key
		s.metrics.rejected.Set(1)
		s.metrics.reloads.WithLabelValues(resultRejected).Inc()
		s.log.Error("authorization file not reloaded; the last good version stays enforced", "path", s.path, "err", err)
	}
}

// check reads the file and enforces a new good version. For a bad version
// it returns the error and a key that identifies the version.
func (s *Source) check() (badKey string, err error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return "read:" + err.Error(), fmt.Errorf("read authorization file: %w", err)
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	same := sum == s.sum
	s.mu.Unlock()
	if same {
		return "", nil
	}
	st, err := parse(s.path, data, s.cluster, s.domain)
	if err == nil {
		err = s.apply(st, sum)
	}
	if err != nil {
		return "content:" + hex.EncodeToString(sum[:]), err
	}
	return "", nil
}

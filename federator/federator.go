package federator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/logbackoff"
	"google.golang.org/protobuf/proto"
)

// ErrNotSynced is returned by readiness checks before the first etcd list.
var ErrNotSynced = errors.New("federator: catalog not synced with etcd")

// ErrEtcdUnreachable is returned by readiness checks while the federation
// etcd does not answer: the federator serves its last catalog (fail static)
// and deletes nothing.
var ErrEtcdUnreachable = errors.New("federator: federation etcd unreachable; serving the last catalog")

// ExportSource produces this cluster's exports: it calls publish with the
// complete set now and whenever it changes, until ctx ends.
type ExportSource interface {
	Run(ctx context.Context, publish func(context.Context, []*causewayv1.ExportRecord) error, onError func(error)) error
}

// Federator is one cluster's control plane.
type Federator struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	metrics *metrics
	feed    *catalog.Feed

	synced     chan struct{}
	syncedOnce sync.Once

	exportsMu      sync.Mutex // guards desiredExports
	desiredExports []*causewayv1.ExportRecord
	exportsChanged chan struct{}                        // cap 1: a pending export reconcile
	importsKicked  chan struct{}                        // cap 1: a pending import reconcile
	pendingImports map[catalog.ServiceKey]pendingImport // owned by runImports

	historyMu sync.Mutex // guards history
	history   []*catalog.View
	publishMu sync.Mutex // serialises publishEntries and republishTrust

	trust      *trustKeeper
	bundleMu   sync.Mutex              // guards lastBundle
	lastBundle *causewayv1.TrustBundle // the bundle record this process last published

	leader   atomic.Bool
	etcdDown atomic.Int64 // unix nanos since the probe failed; 0 while healthy
}

// New returns a federator for cfg over st.
func New(cfg Config, st *store.Store) (*Federator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "federator", "cluster", cfg.Cluster)
	m := newMetrics(cfg.Registerer)
	pins := map[string]string{}
	for c, fp := range cfg.TrustPins {
		pins[c], _ = certs.ParseFingerprint(fp) // validated
	}
	return &Federator{
		cfg:            cfg,
		store:          st,
		log:            log,
		metrics:        m,
		trust:          newTrustKeeper(cfg.Cluster, pins, log, m),
		feed:           catalog.NewFeed(),
		synced:         make(chan struct{}),
		exportsChanged: make(chan struct{}, 1),
		importsKicked:  make(chan struct{}, 1),
	}, nil
}

// Feed is the federator's mirror of the federation.
func (f *Federator) Feed() *catalog.Feed { return f.feed }

func (f *Federator) markSynced() { f.syncedOnce.Do(func() { close(f.synced) }) }

// Ready reports nil once the mirror has listed etcd and while etcd answers.
// Its errors wrap ErrNotSynced or ErrEtcdUnreachable; their text has no
// "federator: " prefix, as readiness endpoints print them after the
// check's name.
func (f *Federator) Ready() error {
	select {
	case <-f.synced:
	default:
		return notReady{ErrNotSynced, "catalog not synced with etcd"}
	}
	if since := f.EtcdDownSince(); !since.IsZero() {
		return notReady{ErrEtcdUnreachable, fmt.Sprintf("federation etcd unreachable (%s) since %s; serving the last catalog",
			strings.Join(f.store.Client().Endpoints(), ","), since.UTC().Format(time.RFC3339))}
	}
	return nil
}

// notReady is a readiness error: a sentinel and the text to show.
type notReady struct {
	err error
	msg string
}

func (e notReady) Error() string { return e.msg }
func (e notReady) Unwrap() error { return e.err }

// EtcdDownSince is when the etcd health probe started failing; zero while
// etcd answers.
func (f *Federator) EtcdDownSince() time.Time {
	if n := f.etcdDown.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// runHealth probes etcd every second and records when it stops answering.
func (f *Federator) runHealth(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := f.store.Client().Get(pctx, store.ClusterKey(f.cfg.Cluster))
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if f.etcdDown.Swap(0) != 0 {
				f.log.Info("federation etcd reachable again", "endpoints", f.store.Client().Endpoints())
			}
			f.metrics.etcdUp.Set(1)
		} else {
			if f.etcdDown.CompareAndSwap(0, time.Now().UnixNano()) {
				f.log.Warn("federation etcd unreachable; serving the last catalog",
					"endpoints", f.store.Client().Endpoints(), "err", err)
			}
			f.metrics.etcdUp.Set(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// kickImports schedules an import reconcile (the sink's addresses changed).
func (f *Federator) kickImports() {
	select {
	case f.importsKicked <- struct{}{}:
	default:
	}
}

// Run registers the cluster, then runs the mirror of etcd (and so the
// catalog every replica serves) and an etcd health probe; the replica that
// wins the cluster's leader election also runs the export side fed by src,
// the import side and the import sink. Leadership lost (etcd unreachable
// past the lease TTL, or another replica took over) stops the writers and
// the replica campaigns again; nothing is deleted on the way. Run returns
// when ctx ends, or with an error when src fails to start.
func (f *Federator) Run(ctx context.Context, src ExportSource) error {
	var casChanged <-chan struct{}
	if f.cfg.CAs != nil {
		casChanged = f.cfg.CAs.Changed() // before register publishes the current set
	}
	if err := f.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	f.restoreTrust(ctx)
	wg.Go(func() { f.runMirror(ctx) })
	wg.Go(func() { f.runHealth(ctx) })
	wg.Go(func() { f.persistTrust(ctx) })
	if casChanged != nil {
		wg.Go(func() { f.runBundle(ctx, casChanged) })
	}
	backoff := 100 * time.Millisecond
	for {
		err := f.lead(ctx, src)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errNotLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// etcdAttemptTimeout bounds one attempt to register with etcd: the etcd
// client waits for a connection as long as its context allows, so without
// it an unreachable etcd would block the first attempt forever, silently.
const etcdAttemptTimeout = 3 * time.Second

// register writes the cluster and bundle records, retrying with back-off
// while etcd fails, until ctx ends. Failures are logged at WARN with the
// etcd endpoints at the first one and then with back-off (not at every
// retry); the connection is logged at INFO.
func (f *Federator) register(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	var lim logbackoff.Limiter
	endpoints := f.store.Client().Endpoints()
	for {
		actx, cancel := context.WithTimeout(ctx, etcdAttemptTimeout)
		err := f.registerOnce(actx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			if n := lim.Success(); n > 0 {
				f.log.Info("federation etcd reachable; cluster registered", "endpoints", endpoints, "failed_attempts", n)
			} else {
				f.log.Info("connected to the federation etcd; cluster registered", "endpoints", endpoints)
			}
			return nil
		}
		if log, failures, suppressed := lim.Failure(""); log {
			f.log.Warn("cannot reach the federation etcd; retrying (the cluster is not registered yet)",
				"endpoints", endpoints, "err", err, "failed_attempts", failures, "not_logged", suppressed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Federator) registerOnce(ctx context.Context) error {
	ranges := make([]string, len(f.cfg.VIPRanges))
	for i, r := range f.cfg.VIPRanges {
		ranges[i] = r.String()
	}
	if err := f.store.PutCluster(ctx, &causewayv1.ClusterRecord{
		Name: f.cfg.Cluster, Region: f.cfg.Region, Zone: f.cfg.Zone,
		VipRanges: ranges, TrustDomain: f.cfg.TrustDomain,
	}); err != nil {
		return fmt.Errorf("register cluster %s: %w", f.cfg.Cluster, err)
	}
	return f.publishBundle(ctx)
}

// setExports records the source's export set and schedules a reconcile.
func (f *Federator) setExports(_ context.Context, recs []*causewayv1.ExportRecord) error {
	f.exportsMu.Lock()
	f.desiredExports = recs
	f.exportsMu.Unlock()
	select {
	case f.exportsChanged <- struct{}{}:
	default:
	}
	return nil
}

// runExports makes etcd hold exactly the desired exports of this cluster,
// retrying with back-off while etcd fails.
func (f *Federator) runExports(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.exportsChanged:
		}
		backoff := 100 * time.Millisecond
		for {
			select { // diff against a synced mirror only
			case <-ctx.Done():
				return
			case <-f.synced:
			}
			f.exportsMu.Lock()
			desired := f.desiredExports
			f.exportsMu.Unlock()
			err := f.reconcileExports(ctx, desired)
			if err == nil || ctx.Err() != nil {
				break
			}
			f.metrics.reconcileErrors.WithLabelValues("export").Inc()
			f.log.Warn("publish exports failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// reconcileExports makes etcd hold exactly desired as this cluster's
// exports. It diffs against the mirrored view, so unchanged exports are
// not rewritten (no etcd churn, no watch events for peers).
func (f *Federator) reconcileExports(ctx context.Context, desired []*causewayv1.ExportRecord) error {
	v := f.feed.View()
	want := make(map[catalog.ServiceKey]bool, len(desired))
	var changed, created []*causewayv1.ExportRecord
	for _, x := range desired {
		k := catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}
		want[k] = true
		have, ok := v.Export(k, f.cfg.Cluster)
		switch {
		case ok && SameExport(have, x):
		case ok:
			changed = append(changed, x)
		default:
			created = append(created, x)
		}
	}
	// New exports go in batches; a batch that meets an existing key (the
	// view lagged) falls back to one read-modify-write per record.
	rest, err := f.store.CreateExports(ctx, created)
	if err != nil {
		return err
	}
	changed = append(changed, rest...)
	written := len(created) - len(rest)
	// Each write is a read-modify-write transaction (it keeps the stored
	// creation time): run them concurrently, etcd batches them.
	written += len(changed)
	if err := forEachParallel(ctx, changed, exportWriters, func(ctx context.Context, x *causewayv1.ExportRecord) error {
		return f.store.PutExport(ctx, x)
	}); err != nil {
		return err
	}
	for _, k := range v.ExportedServices() {
		if want[k] {
			continue
		}
		if _, ok := v.Export(k, f.cfg.Cluster); !ok {
			continue
		}
		if err := f.store.DeleteExport(ctx, k.Namespace, k.Name, f.cfg.Cluster); err != nil {
			return err
		}
		f.log.Info("export withdrawn", "service", k.String())
	}
	if written > 0 {
		f.log.Debug("exports published", "written", written, "total", len(desired))
	}
	f.metrics.exports.Set(float64(len(desired)))
	return nil
}

// SameExport reports whether the stored export have already says what x
// says; the store sets schema version and creation time.
func SameExport(have, x *causewayv1.ExportRecord) bool {
	c := proto.Clone(x).(*causewayv1.ExportRecord)
	c.SchemaVersion, c.Created = have.GetSchemaVersion(), have.GetCreated()
	return proto.Equal(have, c)
}

// exportWriters bounds concurrent export writes.
const exportWriters = 32

// forEachParallel calls fn for every item with at most n calls at once and
// returns the first error (the rest are cancelled).
func forEachParallel[T any](ctx context.Context, items []T, n int, fn func(context.Context, T) error) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		next     atomic.Int64
	)
	for range min(n, len(items)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, items[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

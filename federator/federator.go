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
	"github.com/causeway-mesh/causeway/internal/lib/logbackoff"
	"github.com/causeway-mesh/causeway/internal/lib/retry"
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

	exportsMu      sync.Mutex // guards desiredExports, desiredByKey, desiredGen, reconciled
	desiredExports []*causewayv1.ExportRecord
	desiredByKey   map[catalog.ServiceKey]*causewayv1.ExportRecord // nil until the source published
	desiredGen     uint64                                          // incremented at every publish of the source
	reconciled     map[catalog.ServiceKey]*causewayv1.ExportRecord // desired as of the last export pass
	exportsKnown   chan struct{}                                   // closed at the source's first publish
	servingOwn     chan struct{}                                   // closed once a view with the source's exports is published
	servingOnce    sync.Once
	firstOverlaid  atomic.Pointer[catalog.View] // the first view built with the source's exports
	knownOnce      sync.Once
	exportsChanged chan struct{}                        // cap 1: a pending export reconcile
	healKicked     chan struct{}                        // cap 1: a pending check of the cluster and bundle records
	viewKicked     chan struct{}                        // cap 1: the served view must be rebuilt (the source changed)
	importsKicked  chan struct{}                        // cap 1: a pending import reconcile
	pendingImports map[catalog.ServiceKey]pendingImport // owned by runImports

	historyMu   sync.Mutex // guards history, unresumable
	history     []*catalog.View
	unresumable int64      // a revision whose view was rebuilt with other entries: not offered for resuming
	publishMu   sync.Mutex // serialises publishEntries and republishTrust

	trust      *trustKeeper
	bundleMu   sync.Mutex              // guards lastBundle
	lastBundle *causewayv1.TrustBundle // the bundle record this process last published

	overlayMu sync.Mutex // guards overlay, overlaid
	overlay   map[catalog.ServiceKey]overlayEntry
	overlaid  overlayResult                                                   // what overlayEntries returned last, and from what
	storedOwn atomic.Pointer[map[catalog.ServiceKey]*causewayv1.ExportRecord] // own exports in etcd, as of the last view

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
	log = log.With("component", "federator")
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
		healKicked:     make(chan struct{}, 1),
		viewKicked:     make(chan struct{}, 1),
		exportsKnown:   make(chan struct{}),
		servingOwn:     make(chan struct{}),
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
// catalog every replica serves), the export source src (every replica
// serves this cluster's exports from it, never from etcd) and an etcd
// health probe; the replica that wins the cluster's leader election also
// runs the export side, the import side, the import sink and the healing
// of the cluster's own records. Leadership lost (etcd unreachable past the
// lease TTL, or another replica took over) stops the writers and the
// replica campaigns again; nothing is deleted on the way. Run returns
// when ctx ends, or with an error when src or the sink fails.
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
	srcErr := make(chan error, 1)
	wg.Go(func() {
		err := src.Run(ctx, f.setExports, func(error) { f.metrics.sourceErrors.Inc() })
		if err != nil && ctx.Err() == nil {
			srcErr <- fmt.Errorf("run export source of %s: %w", f.cfg.Cluster, err)
			cancel()
		}
	})
	var backoff retry.Backoff
	for {
		err := f.lead(ctx)
		select {
		case err := <-srcErr:
			return err
		default:
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errNotLeader) {
			return err
		}
		if !backoff.Wait(ctx) {
			return nil
		}
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
	var backoff retry.Backoff
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
		if !backoff.Wait(ctx) {
			return ctx.Err()
		}
	}
}

func (f *Federator) registerOnce(ctx context.Context) error {
	if err := f.store.PutCluster(ctx, f.clusterRecord()); err != nil {
		return fmt.Errorf("register cluster %s: %w", f.cfg.Cluster, err)
	}
	return f.publishBundle(ctx)
}

// authorities are the cluster's CA certificates (DER) as published.
func (f *Federator) authorities() [][]byte {
	if f.cfg.CAs != nil {
		return certs.AuthoritiesDER(f.cfg.CAs.Authorities())
	}
	return f.cfg.Authorities
}

package federator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
)

// ErrNotSynced is returned by readiness checks before the first etcd list.
var ErrNotSynced = errors.New("federator: catalog not synced with etcd")

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
	exportsChanged chan struct{} // cap 1: a pending export reconcile
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
	return &Federator{
		cfg:            cfg,
		store:          st,
		log:            log.With("component", "federator", "cluster", cfg.Cluster),
		metrics:        newMetrics(cfg.Registerer),
		feed:           catalog.NewFeed(),
		synced:         make(chan struct{}),
		exportsChanged: make(chan struct{}, 1),
	}, nil
}

// Feed is the federator's mirror of the federation.
func (f *Federator) Feed() *catalog.Feed { return f.feed }

func (f *Federator) markSynced() { f.syncedOnce.Do(func() { close(f.synced) }) }

// Ready reports nil once the mirror has listed etcd.
func (f *Federator) Ready() error {
	select {
	case <-f.synced:
		return nil
	default:
		return ErrNotSynced
	}
}

// Run registers the cluster, then runs the mirror, the export side fed by
// src, and the import side until ctx ends. It returns an error only when
// the cluster cannot be registered or src fails to start.
func (f *Federator) Run(ctx context.Context, src ExportSource) error {
	if err := f.register(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { f.runMirror(ctx) })
	wg.Go(func() { f.runExports(ctx) })
	wg.Go(func() { f.runImports(ctx) })
	err := src.Run(ctx, f.setExports, func(err error) { f.metrics.sourceErrors.Inc() })
	if err != nil {
		err = fmt.Errorf("run export source of %s: %w", f.cfg.Cluster, err)
	}
	cancel()
	wg.Wait()
	return err
}

func (f *Federator) register(ctx context.Context) error {
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
	if err := f.store.PutBundle(ctx, &causewayv1.TrustBundle{
		Cluster: f.cfg.Cluster, TrustDomain: f.cfg.TrustDomain,
		X509Authorities: f.cfg.Authorities, Sequence: uint64(time.Now().UnixNano()),
	}); err != nil {
		return fmt.Errorf("publish trust bundle of %s: %w", f.cfg.Cluster, err)
	}
	return nil
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

func (f *Federator) reconcileExports(ctx context.Context, desired []*causewayv1.ExportRecord) error {
	want := make(map[string]bool, len(desired))
	for _, x := range desired {
		want[x.GetNamespace()+"/"+x.GetName()] = true
		if err := f.store.PutExport(ctx, x); err != nil {
			return err
		}
	}
	have, err := f.store.ListExportsOf(ctx, f.cfg.Cluster)
	if err != nil {
		return err
	}
	for _, x := range have {
		if !want[x.GetNamespace()+"/"+x.GetName()] {
			if err := f.store.DeleteExport(ctx, x.GetNamespace(), x.GetName(), f.cfg.Cluster); err != nil {
				return err
			}
			f.log.Info("export withdrawn", "service", x.GetNamespace()+"/"+x.GetName())
		}
	}
	f.metrics.exports.Set(float64(len(desired)))
	return nil
}

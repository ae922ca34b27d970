package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	mcslisters "sigs.k8s.io/mcs-api/pkg/client/listers/apis/v1beta1"
)

// publishEvery coalesces bursts of changes (informer start, mass updates)
// into one publish per interval.
const publishEvery = 50 * time.Millisecond

// exporter is the Source's controller for one leadership term, shaped like
// sample-controller: it is given its informers, whose handlers only queue
// service keys, and run waits for their caches and starts the workers.
type exporter struct {
	cfg     SourceConfig
	log     *slog.Logger
	publish func(context.Context, []*causewayv1.ExportRecord) error
	onError func(error)

	exports  mcslisters.ServiceExportLister
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	loop     *workLoop

	publishCh chan struct{} // a publish is due; capacity 1

	mu      sync.Mutex
	records map[catalog.ServiceKey]*causewayv1.ExportRecord // guarded by mu
}

// newExporter returns the controller of one term over inf, which the
// caller starts, and registers its event handlers.
func newExporter(cfg SourceConfig, log *slog.Logger, inf *sourceInformers,
	publish func(context.Context, []*causewayv1.ExportRecord) error, onError func(error)) (*exporter, error) {
	c := &exporter{
		cfg: cfg, log: log, publish: publish, onError: onError,
		exports: inf.exports.Lister(), services: inf.services.Lister(), slices: inf.slices.Lister(), synced: inf.synced,
		publishCh: make(chan struct{}, 1), records: map[catalog.ServiceKey]*causewayv1.ExportRecord{},
	}
	byName := handlerFuncs(c.enqueueByName)
	if _, err := inf.exports.Informer().AddEventHandler(byName); err != nil {
		return nil, fmt.Errorf("watch ServiceExports: %w", err)
	}
	if _, err := inf.services.Informer().AddEventHandler(byName); err != nil {
		return nil, fmt.Errorf("watch Services: %w", err)
	}
	if _, err := inf.slices.Informer().AddEventHandler(handlerFuncs(c.enqueueSlice)); err != nil {
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	// Last, so that no error above leaves a queue (and its goroutine)
	// behind; the handlers use it only once the informers are started.
	c.loop = newWorkLoop("causeway-exports", "export", log, c.reconcile)
	return c, nil
}

// enqueueByName queues the service a ServiceExport or Service names.
func (c *exporter) enqueueByName(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if o, ok := obj.(metav1.Object); ok {
		c.loop.add(catalog.ServiceKey{Namespace: o.GetNamespace(), Name: o.GetName()})
	}
}

// enqueueSlice queues the service an EndpointSlice belongs to.
func (c *exporter) enqueueSlice(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if es, ok := obj.(*discoveryv1.EndpointSlice); ok {
		c.loop.add(catalog.ServiceKey{Namespace: es.Namespace, Name: es.Labels[labelSliceService]})
	}
}

// run waits for the informers' caches, reconciles every ServiceExport
// that exists then before the first publish (so a restart never publishes
// a partial set), and then keeps reconciling and publishing until ctx
// ends.
func (c *exporter) run(ctx context.Context) error {
	defer c.loop.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("kube source: informer caches did not sync")
	}
	c.log.Info("informers synced; reconciling exports")
	all, err := c.exports.List(klabels.Everything())
	if err != nil {
		return fmt.Errorf("list ServiceExports: %w", err)
	}
	for _, se := range all {
		// The informers queued every export too: a failure here is retried.
		_ = c.reconcile(ctx, catalog.ServiceKey{Namespace: se.Namespace, Name: se.Name})
	}
	c.publishNow(ctx)
	c.loop.run(ctx, c.cfg.Workers, c.watchFeed, c.publishLoop)
	return nil
}

// publishNow publishes the current export set.
func (c *exporter) publishNow(ctx context.Context) {
	if err := c.publish(ctx, c.snapshot()); err != nil {
		c.onError(err)
	}
}

// publishLoop publishes whenever the export set changed, at most once per
// publishEvery, until ctx ends.
func (c *exporter) publishLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.publishCh:
		}
		c.publishNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(publishEvery):
		}
	}
}

// watchFeed requeues the exports whose federation state changed: their
// Ready and Conflict conditions depend on it.
func (c *exporter) watchFeed(ctx context.Context) {
	var prev *catalog.View
	for {
		changed := c.cfg.Feed.Changed()
		v := c.cfg.Feed.View()
		for _, k := range changedServices(prev, v) {
			if _, err := c.exports.ServiceExports(k.Namespace).Get(k.Name); err == nil {
				c.loop.add(k)
			}
		}
		prev = v
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// changedServices lists the services whose set of export records differs
// between two views (records are shared between views when unchanged).
func changedServices(prev, v *catalog.View) []catalog.ServiceKey {
	var out []catalog.ServiceKey
	seen := map[catalog.ServiceKey]bool{}
	for _, k := range v.ExportedServices() {
		seen[k] = true
		if prev == nil || !sameRecords(prev.Exports(k), v.Exports(k)) {
			out = append(out, k)
		}
	}
	if prev != nil {
		for _, k := range prev.ExportedServices() {
			if !seen[k] {
				out = append(out, k)
			}
		}
	}
	return out
}

func sameRecords(a, b []*causewayv1.ExportRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (c *exporter) snapshot() []*causewayv1.ExportRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*causewayv1.ExportRecord, 0, len(c.records))
	for _, r := range c.records {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}

// setRecord records the export of key (nil: not exported) and schedules a
// publish when that changed the set.
func (c *exporter) setRecord(key catalog.ServiceKey, rec *causewayv1.ExportRecord) {
	c.mu.Lock()
	old, had := c.records[key]
	if rec == nil {
		delete(c.records, key)
	} else {
		c.records[key] = rec
	}
	c.mu.Unlock()
	if (rec == nil && !had) || (rec != nil && had && protoEqual(old, rec)) {
		return
	}
	select {
	case c.publishCh <- struct{}{}:
	default:
	}
}

// reconcile computes the export record of one ServiceExport and sets its
// conditions. Idempotent; writes the status only when it changes.
func (c *exporter) reconcile(ctx context.Context, key catalog.ServiceKey) error {
	ns, name := key.Namespace, key.Name
	se, err := c.exports.ServiceExports(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.setRecord(key, nil)
		return nil
	}
	if err != nil {
		return err
	}
	var conds []metav1.Condition
	svc, err := c.services.Services(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		c.setRecord(key, nil)
		conds = invalid(se, mcsv1beta1.ServiceExportReasonNoService,
			fmt.Sprintf("Service %s/%s does not exist", ns, name))
	case err != nil:
		return err
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		c.setRecord(key, nil)
		conds = invalid(se, mcsv1beta1.ServiceExportReasonInvalidServiceType,
			fmt.Sprintf("Service %s/%s has type ExternalName, which cannot be exported", ns, name))
	default:
		rec, problem := c.record(se, svc)
		if problem != "" {
			c.setRecord(key, nil)
			conds = invalid(se, "InvalidAnnotation", problem)
			break
		}
		c.setRecord(key, rec)
		conds = c.validConditions(se, rec)
	}
	return c.writeConditions(ctx, se, conds)
}

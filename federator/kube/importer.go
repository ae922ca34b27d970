package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	mcslisters "sigs.k8s.io/mcs-api/pkg/client/listers/apis/v1beta1"
)

// importer is the Sink's controller for one leadership term, shaped like
// sample-controller: it is given its informers, whose handlers only queue
// service keys, and run waits for their caches and starts the workers.
type importer struct {
	cfg  SinkConfig
	log  *slog.Logger
	sink *Sink // owns the write counter and the waiting set across terms
	feed *catalog.Feed
	kick func() // tells the federator an address changed

	imports    mcslisters.ServiceImportLister
	services   corelisters.ServiceLister
	slices     discoverylisters.EndpointSliceLister
	gwSlices   discoverylisters.EndpointSliceLister // nil without a gateway Service
	namespaces corelisters.NamespaceLister          // every Namespace, not only ours
	synced     []cache.InformerSynced
	loop       *workLoop

	ready   atomic.Bool  // caches synced, first full pass queued
	initial atomic.Int64 // keys queued by the first full pass
}

// newImporter returns the controller of one term of s over inf, which the
// caller starts, and registers its event handlers.
func newImporter(s *Sink, inf *sinkInformers, feed *catalog.Feed, kick func()) (*importer, error) {
	c := &importer{
		cfg: s.cfg, log: s.log, sink: s, feed: feed, kick: kick,
		imports: inf.imports.Lister(), services: inf.services.Lister(), slices: inf.slices.Lister(),
		namespaces: inf.namespaces.Lister(), synced: inf.synced,
	}
	if inf.gatewaySlices != nil {
		c.gwSlices = inf.gatewaySlices.Lister()
	}
	byLabel := handlerFuncs(c.enqueueByLabel)
	for what, i := range map[string]cache.SharedIndexInformer{"ServiceImports": inf.imports.Informer(), "EndpointSlices": inf.slices.Informer()} {
		if _, err := i.AddEventHandler(byLabel); err != nil {
			return nil, fmt.Errorf("kube sink: watch %s: %w", what, err)
		}
	}
	// A derived Service's ClusterIP is the import's address: tell the
	// federator when one appears or changes.
	if _, err := inf.services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { c.enqueueByLabel(o); kick() },
		UpdateFunc: func(old, o any) {
			c.enqueueByLabel(o)
			if old.(*corev1.Service).Spec.ClusterIP != o.(*corev1.Service).Spec.ClusterIP {
				kick()
			}
		},
		DeleteFunc: func(o any) { c.enqueueByLabel(o); kick() },
	}); err != nil {
		return nil, fmt.Errorf("kube sink: watch Services: %w", err)
	}
	if err := c.watchNamespaces(inf.namespaces.Informer()); err != nil {
		return nil, err
	}
	if inf.gatewaySlices != nil {
		if _, err := inf.gatewaySlices.Informer().AddEventHandler(handlerFuncs(func(any) { c.enqueueAll() })); err != nil {
			return nil, fmt.Errorf("kube sink: watch gateway endpoints: %w", err)
		}
	}
	// Last, so that no error above leaves a queue (and its goroutine)
	// behind; the handlers use it only once the informers are started.
	c.loop = newWorkLoop("causeway-imports", "import", s.log, c.reconcile)
	return c, nil
}

// handlerFuncs calls f with the object of every add, update and delete.
func handlerFuncs(f func(obj any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, o any) { f(o) }, DeleteFunc: f}
}

// enqueueByLabel queues the service an object we own was made for.
func (c *importer) enqueueByLabel(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if o, ok := obj.(metav1.Object); ok {
		c.loop.add(serviceOf(o))
	}
}

// serviceOf is the service an object we own was made for.
func serviceOf(o metav1.Object) catalog.ServiceKey {
	return catalog.ServiceKey{Namespace: o.GetNamespace(), Name: o.GetLabels()[LabelServiceName]}
}

// run waits for the informers' caches, then reconciles every import and
// everything we own once (which also removes what a crash left behind) and
// follows the feed until ctx ends.
func (c *importer) run(ctx context.Context) error {
	defer c.loop.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("kube sink: informer caches did not sync")
	}
	c.ready.Store(true)
	defer c.ready.Store(false)
	c.kick()
	c.enqueueAll()
	c.initial.Store(int64(c.loop.queue.Len()))
	c.loop.run(ctx, c.cfg.Workers, c.watchFeed)
	return nil
}

// settled reports whether everything queued by the first full pass has
// been reconciled and nothing is queued or in flight.
func (c *importer) settled() bool {
	return c.ready.Load() && c.loop.reconciled.Load() >= c.initial.Load() && c.loop.idle()
}

// watchFeed queues the imports that appear, change or go in the feed's
// views until ctx ends.
func (c *importer) watchFeed(ctx context.Context) {
	var prev map[catalog.ServiceKey]*causewayv1.ImportRecord
	for {
		changed := c.feed.Changed()
		cur := c.feed.View().Imports(c.cfg.Cluster)
		for k, imp := range cur {
			if prev == nil || prev[k] != imp {
				c.loop.add(k)
			}
		}
		for k := range prev {
			if _, ok := cur[k]; !ok {
				c.loop.add(k)
			}
		}
		prev = cur
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// enqueueAll queues every import of the view and every object we own.
func (c *importer) enqueueAll() {
	for k := range c.feed.View().Imports(c.cfg.Cluster) {
		c.loop.add(k)
	}
	var owned []metav1.Object
	if sis, err := c.imports.List(klabels.Everything()); err == nil {
		for _, o := range sis {
			owned = append(owned, o)
		}
	}
	if svcs, err := c.services.List(klabels.Everything()); err == nil {
		for _, o := range svcs {
			owned = append(owned, o)
		}
	}
	if slices, err := c.slices.List(klabels.Everything()); err == nil {
		for _, o := range slices {
			owned = append(owned, o)
		}
	}
	for _, o := range owned {
		c.loop.add(serviceOf(o))
	}
}

// reconcile makes the cluster's objects for one service match its import.
func (c *importer) reconcile(ctx context.Context, key catalog.ServiceKey) error {
	imp, ok := c.feed.View().Import(c.cfg.Cluster, key)
	if !ok {
		c.sink.waiting.Delete(key)
		return c.remove(ctx, key.Namespace, key.Name)
	}
	svc, err := c.applyService(ctx, imp)
	if err == nil && svc != nil {
		if err = c.applySlices(ctx, imp); err == nil {
			err = c.applyServiceImport(ctx, imp, svc)
		}
	}
	if errors.Is(err, errNamespaceAbsent) {
		c.waitingForNamespace(key)
		return nil
	}
	if err == nil && svc != nil {
		c.sink.waiting.Delete(key)
	}
	return err // svc == nil: name taken by a Service that is not ours (logged)
}

// remove deletes every object of ns/name this sink owns.
func (c *importer) remove(ctx context.Context, ns, name string) error {
	if si, err := c.imports.ServiceImports(ns).Get(name); err == nil && ours(si.Labels, c.cfg.Cluster) {
		if err := c.cfg.MCS.MulticlusterV1beta1().ServiceImports(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ServiceImport %s/%s: %w", ns, name, err)
		}
		c.wrote()
		c.log.Info("ServiceImport removed", "service", ns+"/"+name)
	}
	if svc, err := c.services.Services(ns).Get(DerivedName(name)); err == nil && ours(svc.Labels, c.cfg.Cluster) && svc.Labels[LabelServiceName] == name {
		if err := c.cfg.Kube.CoreV1().Services(ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete derived Service %s/%s: %w", ns, svc.Name, err)
		}
		c.wrote()
	}
	return c.pruneSlices(ctx, ns, name, nil)
}

// wrote counts one object created, changed or deleted.
func (c *importer) wrote() { c.sink.writes.Add(1) }

func labelsInclude(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

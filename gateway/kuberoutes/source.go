package kuberoutes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/causeway-mesh/causeway/gateway/l7route"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gatewayv1informers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions/apis/v1"
)

// ErrRunTwice is returned by a second call of Source.Run or
// StatusWriter.Run.
var ErrRunTwice = errors.New("kuberoutes: Run called twice")

// Source supplies the HTTPRoutes and GRPCRoutes of a cluster as
// l7route.Routes: a gateway.RouteSource backed by shared informers. Run
// starts the informers; until they have synced, Routes returns what has
// been read so far.
type Source struct {
	log     *slog.Logger
	factory gatewayinformers.SharedInformerFactory
	http    gatewayv1informers.HTTPRouteInformer
	grpc    gatewayv1informers.GRPCRouteInformer
	client  gatewayclient.Interface
	synced  chan struct{}
	ran     atomic.Bool

	mu sync.Mutex // guards changed, dirty and snap
	// changed is closed and replaced at every change.
	changed chan struct{}
	// dirty is true when snap is older than the informers' caches.
	dirty bool
	// snap is the latest conversion of the caches.
	snap *snapshot

	// served is the snapshot Routes last returned: the generations a
	// status reported after it refers to.
	served atomic.Pointer[snapshot]
}

// snapshot is one conversion of the informers' caches. Immutable.
type snapshot struct {
	routes []*l7route.Route
	// gens is the generation of the object each route was converted from.
	gens map[l7route.RouteKey]int64
	// failed holds the objects whose conversion failed outright; their
	// route in routes, if any, is the previous conversion.
	failed map[l7route.RouteKey]error
}

var emptySnapshot = &snapshot{gens: map[l7route.RouteKey]int64{}, failed: map[l7route.RouteKey]error{}}

// NewSource returns a Source of cfg's routes. It starts nothing: call Run.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.Client == nil {
		return nil, ErrNoClient
	}
	var opts []gatewayinformers.SharedInformerOption
	if cfg.Namespace != "" {
		opts = append(opts, gatewayinformers.WithNamespace(cfg.Namespace))
	}
	f := gatewayinformers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, opts...)
	s := &Source{
		log: discardIfNil(cfg.Log), factory: f, client: cfg.Client,
		http: f.Gateway().V1().HTTPRoutes(), grpc: f.Gateway().V1().GRPCRoutes(),
		synced: make(chan struct{}), changed: make(chan struct{}), dirty: true, snap: emptySnapshot,
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.touch() },
		UpdateFunc: func(oldObj, newObj any) {
			if specChanged(oldObj, newObj) {
				s.touch()
			}
		},
		DeleteFunc: func(any) { s.touch() },
	}
	for _, inf := range []cache.SharedIndexInformer{s.http.Informer(), s.grpc.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("watch routes: %w", err)
		}
	}
	return s, nil
}

// Run runs the informers until ctx is done, then stops them and returns
// nil. It may be called once.
func (s *Source) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return ErrRunTwice
	}
	s.factory.Start(ctx.Done())
	defer s.factory.Shutdown()
	if cache.WaitForCacheSync(ctx.Done(), s.http.Informer().HasSynced, s.grpc.Informer().HasSynced) {
		close(s.synced)
		s.touch()
	}
	<-ctx.Done()
	return nil
}

// Synced returns a channel closed once the informers have listed every
// route: from then on Routes is complete.
func (s *Source) Synced() <-chan struct{} { return s.synced }

// Changed returns a channel closed at the next change of Routes.
func (s *Source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Routes returns the current routes, sorted by key. Callers must not
// modify them.
func (s *Source) Routes() []*l7route.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty {
		s.snap = s.convertLocked()
		s.dirty = false
	}
	s.served.Store(s.snap)
	return slices.Clone(s.snap.routes)
}

func (s *Source) touch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
	close(s.changed)
	s.changed = make(chan struct{})
}

// convertLocked converts the caches. An object that does not convert keeps
// s.snap's route of its key, the last good conversion, if any.
func (s *Source) convertLocked() *snapshot {
	next := &snapshot{gens: map[l7route.RouteKey]int64{}, failed: map[l7route.RouteKey]error{}}
	add := func(key l7route.RouteKey, m *metav1.ObjectMeta, parents []gatewayv1.ParentReference, conv func() (*l7route.Route, error)) {
		if !slices.ContainsFunc(parents, l7route.IsMeshParent) {
			return
		}
		next.gens[key] = m.Generation
		r, err := safeConvert(key, conv)
		if err != nil {
			s.log.Error("route does not convert", "route", key.String(), "err", err)
			next.failed[key] = err
			r = s.previousLocked(key)
		}
		if r != nil {
			next.routes = append(next.routes, r)
		}
	}
	hrs, _ := s.http.Lister().List(labels.Everything())
	for _, hr := range hrs {
		key := l7route.RouteKey{Kind: l7route.KindHTTP, Namespace: hr.Namespace, Name: hr.Name}
		add(key, &hr.ObjectMeta, hr.Spec.ParentRefs, func() (*l7route.Route, error) { return l7route.FromHTTPRoute(hr) })
	}
	grs, _ := s.grpc.Lister().List(labels.Everything())
	for _, gr := range grs {
		key := l7route.RouteKey{Kind: l7route.KindGRPC, Namespace: gr.Namespace, Name: gr.Name}
		add(key, &gr.ObjectMeta, gr.Spec.ParentRefs, func() (*l7route.Route, error) { return l7route.FromGRPCRoute(gr) })
	}
	slices.SortFunc(next.routes, func(a, b *l7route.Route) int { return cmp.Compare(a.Key().String(), b.Key().String()) })
	return next
}

func (s *Source) previousLocked(key l7route.RouteKey) *l7route.Route {
	for _, r := range s.snap.routes {
		if r.Key() == key {
			return r
		}
	}
	return nil
}

// safeConvert runs conv, turning a panic into an error. A conversion
// error proper is not returned: the route carries it and its validation
// reports it.
func safeConvert(key l7route.RouteKey, conv func() (*l7route.Route, error)) (r *l7route.Route, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("convert %s: %v", key, p)
		}
	}()
	r, _ = conv()
	if r == nil {
		return nil, fmt.Errorf("convert %s: no route", key)
	}
	return r, nil
}

// specChanged reports whether an update changed what a route converts
// from: its spec (generation) or its annotations.
func specChanged(oldObj, newObj any) bool {
	o, ok1 := oldObj.(metav1.Object)
	n, ok2 := newObj.(metav1.Object)
	if !ok1 || !ok2 {
		return true
	}
	return o.GetGeneration() != n.GetGeneration() || !maps.Equal(o.GetAnnotations(), n.GetAnnotations())
}

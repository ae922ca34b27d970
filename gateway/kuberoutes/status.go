package kuberoutes

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/gateway/l7route"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// StatusSink receives the gateway's verdict on its routes after every
// validation (gateway runRoutes): one status per route it was given. The
// gateway defines the same interface where it calls it; StatusWriter
// implements it.
type StatusSink interface {
	ReportStatus(ctx context.Context, statuses []l7route.RouteStatus)
}

var _ StatusSink = (*StatusWriter)(nil)

// Retry back-off of a route whose write failed or that is written again
// and again (replicas that disagree): per route, from retryBase doubling
// up to retryMax; overall at most writeQPS writes a second, in bursts of
// writeBurst.
const (
	retryBase  = 5 * time.Millisecond
	retryMax   = 30 * time.Second
	writeQPS   = 10
	writeBurst = 100
)

// StatusWriter writes the gateway's verdict on each route (Accepted and
// ResolvedRefs) into the route's status.parents, one entry per mesh
// parentRef, under ControllerName. ReportStatus records the verdicts; Run
// writes them.
type StatusWriter struct {
	src     *Source
	client  gatewayclient.Interface
	log     *slog.Logger
	workers int
	queue   workqueue.TypedRateLimitingInterface[l7route.RouteKey]
	ran     atomic.Bool

	// compared counts reconciles that compared a verdict with the stored
	// status (tests wait on it); writes counts status writes.
	compared, writes atomic.Int64

	mu sync.Mutex // guards want
	// want is the latest verdict on every reported route.
	want map[l7route.RouteKey]verdict
}

// verdict is what the gateway said of one generation of a route.
type verdict struct {
	generation int64
	// conditions lack ObservedGeneration and LastTransitionTime.
	conditions []metav1.Condition
}

// NewStatusWriter returns a writer of the statuses of cfg.Source's routes.
// It writes nothing until Run.
func NewStatusWriter(cfg StatusConfig) (*StatusWriter, error) {
	if cfg.Source == nil {
		return nil, ErrNoSource
	}
	if cfg.Client == nil {
		cfg.Client = cfg.Source.client
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[l7route.RouteKey](retryBase, retryMax),
		&workqueue.TypedBucketRateLimiter[l7route.RouteKey]{Limiter: rate.NewLimiter(writeQPS, writeBurst)})
	w := &StatusWriter{
		src: cfg.Source, client: cfg.Client, log: discardIfNil(cfg.Log), workers: cfg.Workers,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
			workqueue.TypedRateLimitingQueueConfig[l7route.RouteKey]{Name: "kuberoutes-status"}),
		want: map[l7route.RouteKey]verdict{},
	}
	for kind, inf := range map[l7route.Kind]cache.SharedIndexInformer{
		l7route.KindHTTP: w.src.http.Informer(), l7route.KindGRPC: w.src.grpc.Informer(),
	} {
		// A stored route that appears or changes is compared with its
		// verdict; an update (often a status write, ours or another
		// replica's) is queued rate-limited, so that a route written
		// over and over backs off.
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.enqueue(kind, obj, false) },
			UpdateFunc: func(_, obj any) { w.enqueue(kind, obj, true) },
		})
		if err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *StatusWriter) enqueue(kind l7route.Kind, obj any, limited bool) {
	name, err := cache.ObjectToName(obj)
	if err != nil {
		return
	}
	key := l7route.RouteKey{Kind: kind, Namespace: name.Namespace, Name: name.Name}
	if limited {
		w.queue.AddRateLimited(key)
	} else {
		w.queue.Add(key)
	}
}

// ReportStatus records the gateway's verdict on its routes, statuses
// from validating the routes the Source's Routes last returned, and
// queues the routes whose verdict changed. It does not block. Routes
// missing from statuses keep their last written status.
func (w *StatusWriter) ReportStatus(_ context.Context, statuses []l7route.RouteStatus) {
	snap := w.src.served.Load()
	if snap == nil {
		return
	}
	next := make(map[l7route.RouteKey]verdict, len(statuses))
	for _, st := range statuses {
		gen, ok := snap.gens[st.Key]
		if !ok {
			continue // not one of the Source's routes
		}
		if err, failed := snap.failed[st.Key]; failed {
			st.Err = err
		}
		// Stale is left out: it depends on the replica's history (one
		// started after the last good version has none), and replicas
		// must agree on what they write.
		st.Stale = false
		next[st.Key] = verdict{generation: gen, conditions: st.Conditions()}
	}
	for key, err := range snap.failed {
		if _, ok := next[key]; !ok {
			next[key] = verdict{generation: snap.gens[key], conditions: l7route.RouteStatus{Key: key, Err: err}.Conditions()}
		}
	}
	w.mu.Lock()
	prev := w.want
	w.want = next
	w.mu.Unlock()
	for key, v := range next {
		if p, ok := prev[key]; !ok || !sameVerdict(p, v) {
			w.queue.Add(key)
		}
	}
}

func sameVerdict(a, b verdict) bool {
	if a.generation != b.generation || len(a.conditions) != len(b.conditions) {
		return false
	}
	for i := range a.conditions {
		x, y := a.conditions[i], b.conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

// Run writes statuses until ctx is done and returns nil once its workers
// have stopped. It may be called once.
func (w *StatusWriter) Run(ctx context.Context) error {
	if w.ran.Swap(true) {
		return ErrRunTwice
	}
	var wg sync.WaitGroup
	for range w.workers {
		wg.Go(func() {
			for w.processNextWorkItem(ctx) {
			}
		})
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	return nil
}

// processNextWorkItem reconciles the next route. A failure is retried
// rate-limited; a write keeps the route's back-off (a route written again
// at once waits longer each time); a route found in sync is forgotten.
func (w *StatusWriter) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(key)
	wrote, err := w.reconcile(ctx, key)
	if wrote {
		w.writes.Add(1)
	}
	switch {
	case err != nil && ctx.Err() == nil:
		level := slog.LevelWarn
		if apierrors.IsConflict(err) {
			level = slog.LevelDebug // another writer (replica) was first: re-read and compare
		}
		w.log.Log(ctx, level, "write route status failed; retrying", "route", key.String(), "err", err)
		w.queue.AddRateLimited(key)
	case err == nil && !wrote:
		w.queue.Forget(key)
	}
	return true
}

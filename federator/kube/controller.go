package kube

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/causeway-mesh/causeway/catalog"
	"k8s.io/client-go/util/workqueue"
)

// workLoop is the queue half of a controller, as in sample-controller: a
// rate-limited workqueue of typed service keys and the workers that hand
// each key to reconcile. Retries are decided here only, in
// processNextWorkItem.
type workLoop struct {
	queue     workqueue.TypedRateLimitingInterface[catalog.ServiceKey]
	reconcile func(context.Context, catalog.ServiceKey) error
	log       *slog.Logger
	what      string // what a key names, for the retry log: "import", "export"

	inflight   atomic.Int64 // keys being reconciled now
	reconciled atomic.Int64 // keys reconciled (successfully or not) so far
}

// newWorkLoop returns a loop over a new queue named name.
func newWorkLoop(name, what string, log *slog.Logger, reconcile func(context.Context, catalog.ServiceKey) error) *workLoop {
	return &workLoop{
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[catalog.ServiceKey](),
			workqueue.TypedRateLimitingQueueConfig[catalog.ServiceKey]{Name: name}),
		reconcile: reconcile, log: log, what: what,
	}
}

// add queues k; keys without a namespace or name are not services and are
// dropped.
func (w *workLoop) add(k catalog.ServiceKey) {
	if k.Namespace != "" && k.Name != "" {
		w.queue.Add(k)
	}
}

// idle reports whether nothing is queued or being reconciled.
func (w *workLoop) idle() bool { return w.queue.Len() == 0 && w.inflight.Load() == 0 }

// run starts n workers and the loops in also, and returns once ctx is done
// and all of them have returned. The queue is shut down on return, so a
// loop can be run once.
func (w *workLoop) run(ctx context.Context, n int, also ...func(context.Context)) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { w.runWorker(ctx) })
	}
	for _, f := range also {
		wg.Go(func() { f(ctx) })
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
}

func (w *workLoop) runWorker(ctx context.Context) {
	for w.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem reconciles the next key, requeueing it rate-limited
// when that failed while ctx is live. It returns false once the queue is
// shut down.
func (w *workLoop) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	defer w.reconciled.Add(1)
	defer w.queue.Done(key)
	if err := w.reconcile(ctx, key); err != nil && ctx.Err() == nil {
		w.log.Warn("reconcile "+w.what+" failed; retrying", "service", key.String(), "err", err)
		w.queue.AddRateLimited(key)
		return true
	}
	w.queue.Forget(key)
	return true
}

package store

import (
	"context"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// waitTimeout bounds every wait for a watch in these tests.
const waitTimeout = 30 * time.Second

// testExport is an export record of demo/<svc> from cluster with one port.
func testExport(cluster, svc string, port uint32) *causewayv1.ExportRecord {
	return &causewayv1.ExportRecord{
		Namespace: "demo", Name: svc, Cluster: cluster,
		Type:  causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
		Ports: []*causewayv1.ServicePort{{Name: "http", Port: port, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
	}
}

// recordingWatch runs Store.Watch in the background and records every
// change and batch revision it delivers, in order.
type recordingWatch struct {
	done chan struct{} // closed when Watch returned
	err  error         // Watch's result; read after done

	mu      sync.Mutex // guards changes, revs, changed
	changes []Change
	revs    []int64
	changed chan struct{} // closed and replaced at every batch
}

// startRecordingWatch starts s.Watch(ctx, fromRev, …); t.Cleanup stops it
// and waits for it.
func startRecordingWatch(t *testing.T, s *Store, fromRev int64) *recordingWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &recordingWatch{done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = s.Watch(ctx, fromRev, func(b Batch) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.changes = append(w.changes, b.Changes...)
			w.revs = append(w.revs, b.Revision)
			close(w.changed)
			w.changed = make(chan struct{})
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// snapshot returns copies of the changes and batch revisions so far.
func (w *recordingWatch) snapshot() ([]Change, []int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Change(nil), w.changes...), append([]int64(nil), w.revs...)
}

// waitFor waits until cond holds for the changes delivered so far. It
// fails the test if the watch ends first or after waitTimeout.
func (w *recordingWatch) waitFor(t *testing.T, what string, cond func([]Change) bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ok, changed := cond(w.changes), w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-w.done:
			t.Fatalf("waiting for %s: watch ended: %v", what, w.err)
		case <-deadline.C:
			t.Fatalf("waiting for %s: timed out after %s", what, waitTimeout)
		}
	}
}

// waitDone waits for the watch to end and returns its error.
func (w *recordingWatch) waitDone(t *testing.T) error {
	t.Helper()
	select {
	case <-w.done:
		return w.err
	case <-time.After(waitTimeout):
		t.Fatalf("watch still running after %s", waitTimeout)
		return nil
	}
}

// requireRunning fails the test if the watch has ended.
func (w *recordingWatch) requireRunning(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
		t.Fatalf("watch ended: %v", w.err)
	default:
	}
}

// lastChange returns the last change of key in changes.
func lastChange(changes []Change, key string) (Change, bool) {
	for i := len(changes) - 1; i >= 0; i-- {
		if changes[i].Key == key {
			return changes[i], true
		}
	}
	return Change{}, false
}

// upserted reports whether the last change of every key is an upsert.
func upserted(keys ...string) func([]Change) bool {
	return func(changes []Change) bool {
		for _, k := range keys {
			if c, ok := lastChange(changes, k); !ok || c.Deleted || c.Entry == nil {
				return false
			}
		}
		return true
	}
}

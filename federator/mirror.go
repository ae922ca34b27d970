package federator

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/retry"
)

// runMirror keeps f.feed equal to the federation in etcd: list, then watch
// from the list revision; a compacted or broken watch re-lists. A value
// that does not decode never removes a key: the last good value stays,
// across re-lists too. It returns when ctx ends.
func (f *Federator) runMirror(ctx context.Context) {
	var backoff retry.Backoff
	var last map[string]*causewayv1.Entry
	for ctx.Err() == nil {
		var err error
		last, err = f.mirrorOnce(ctx, last)
		if ctx.Err() != nil {
			return
		}
		f.metrics.relists.Inc()
		if errors.Is(err, store.ErrCompacted) {
			f.log.Info("catalog watch compacted; re-listing", "err", err)
			backoff.Reset()
		} else {
			f.log.Warn("catalog watch failed; re-listing", "err", err)
		}
		if !backoff.Wait(ctx) {
			return
		}
	}
}

// mirrorOnce lists and watches until the watch fails; prev is what the
// last run ended with (nil at first), whose good values stand in for keys
// that no longer decode. It returns the entries it ended with.
func (f *Federator) mirrorOnce(ctx context.Context, prev map[string]*causewayv1.Entry) (map[string]*causewayv1.Entry, error) {
	l, err := f.store.ListAll(ctx, store.Prefix)
	if err != nil {
		return prev, err
	}
	entries := make(map[string]*causewayv1.Entry, len(l.Entries))
	for _, e := range l.Entries {
		entries[e.GetKey()] = e
	}
	for _, key := range l.Undecodable {
		rel := store.RelativeKey(key)
		if e, ok := prev[rel]; ok && !f.isOwnExport(key) {
			entries[rel] = e
		}
	}
	rev := l.Revision
	m := &mirrorState{raw: newRawMirror(f.cfg.Cluster, entries), rev: rev, kick: make(chan struct{}, 1)}
	f.publishView(f.buildView(m.raw, rev))
	f.markSynced()
	f.kickHeal()

	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { f.publishViews(wctx, m) })
	err = f.store.Watch(wctx, rev+1, func(b store.Batch) error {
		m.mu.Lock()
		for _, c := range b.Changes {
			if f.applyChange(m.raw, c) {
				m.drift = true
			}
		}
		m.rev, m.dirty = b.Revision, true
		m.mu.Unlock()
		select {
		case m.kick <- struct{}{}:
		default:
		}
		return nil
	})
	cancel()
	wg.Wait()
	return m.raw.entries, err
}

// mirrorState is what one mirrorOnce run shares between the watch, which
// applies batches to raw at once, and publishViews.
type mirrorState struct {
	mu    sync.Mutex // guards raw, rev, dirty, drift
	raw   *rawMirror
	rev   int64
	dirty bool          // entries changed since the last view
	drift bool          // one of this cluster's exports in etcd differs from the source
	kick  chan struct{} // cap 1: entries changed
}

// publishViews publishes a view of m after changes, at most every
// mirrorThrottle (views are an O(n) copy and index each, so a burst of
// thousands of single-key batches costs a few copies, not thousands), and
// when the export source changed. It returns when ctx ends.
func (f *Federator) publishViews(ctx context.Context, m *mirrorState) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-f.viewKicked:
			m.mu.Lock()
			m.dirty = true
			m.mu.Unlock()
		}
		start := time.Now()
		m.mu.Lock()
		var v *catalog.View
		if m.dirty {
			v, m.dirty = f.buildView(m.raw, m.rev), false
		}
		kickExports := m.drift
		m.drift = false
		m.mu.Unlock()
		if v != nil {
			f.publishView(v)
		}
		if kickExports {
			f.kickExports() // after the view: the export side diffs against it
		}
		// Building a view is O(catalog): at most a fifth of the time goes
		// to it, however large the federation.
		t := time.NewTimer(max(mirrorThrottle, 4*time.Since(start)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// applyChange applies one watch change to the mirror. A value that does not
// decode keeps the key's last good value, except for this cluster's own
// exports (the source decides those; absent, the export side puts them
// back). It reports whether one of this cluster's exports in etcd now
// differs from the source, and checks the cluster and bundle records
// when their keys change.
func (f *Federator) applyChange(m *rawMirror, c store.Change) (drift bool) {
	rel := store.RelativeKey(c.Key)
	switch {
	case c.Deleted:
		m.delete(rel)
	case c.Entry != nil:
		m.set(rel, c.Entry)
	case c.Undecodable && f.isOwnExport(c.Key):
		m.delete(rel)
	}
	kind, owner, ok := store.KeyOwner(c.Key)
	if !ok || owner != f.cfg.Cluster {
		return false
	}
	switch kind {
	case store.KindClusters, store.KindBundles:
		f.kickHeal()
	case store.KindExports:
		if x := c.Entry.GetExport(); x != nil {
			return f.exportDrifted(x)
		}
		_, known := f.sourceExports()
		return known
	}
	return false
}

// isOwnExport reports whether a full key is one of this cluster's exports.
func (f *Federator) isOwnExport(key string) bool {
	kind, owner, ok := store.KeyOwner(key)
	return ok && kind == store.KindExports && owner == f.cfg.Cluster
}

// mirrorThrottle is the shortest time between two published views.
const mirrorThrottle = 20 * time.Millisecond

// historySize is how many recent views the federator keeps so reconnecting
// catalog clients can resume with a delta.
const historySize = 8

// republishTrust rebuilds the served view after a trust change that no
// etcd change brought (an operator's TrustCluster, a new own bundle): the
// view is rebuilt from the raw entries with what this cluster trusts now.
func (f *Federator) republishTrust() { f.kickView() }

// kickView schedules a rebuild of the served view from the mirror.
func (f *Federator) kickView() {
	select {
	case f.viewKicked <- struct{}{}:
	default:
	}
}

// publishView makes v current and remembers it for resuming watchers.
func (f *Federator) publishView(v *catalog.View) {
	f.historyMu.Lock()
	if cur := f.feed.View(); cur != nil && cur.Revision == v.Revision {
		if sameEntries(cur, v) {
			f.historyMu.Unlock()
			f.markServing(v)
			return // a rebuild that changed nothing
		}
		// Rebuilt without an etcd change (the export source or this
		// cluster's trust in a peer changed): views of that revision
		// differ, so none is offered for resuming; a watcher resuming from
		// it gets a snapshot.
		f.unresumable = v.Revision
		f.history = slices.DeleteFunc(f.history, func(h *catalog.View) bool { return h.Revision == v.Revision })
	}
	if v.Revision != f.unresumable {
		if len(f.history) == historySize {
			copy(f.history, f.history[1:])
			f.history = f.history[:historySize-1]
		}
		f.history = append(f.history, v)
	}
	f.historyMu.Unlock()
	f.feed.Publish(v)
	f.markServing(v)
}

// markServing notes that the view serving this cluster's own exports from
// its source is out (Catalog.Watch waits for it).
func (f *Federator) markServing(v *catalog.View) {
	if f.firstOverlaid.Load() == v {
		f.servingOnce.Do(func() { close(f.servingOwn) })
	}
}

// sameEntries reports whether two views hold the same entry pointers
// under the same keys (rebuilt entries that did not change keep theirs).
func sameEntries(a, b *catalog.View) bool {
	ea, eb := a.Entries(), b.Entries()
	if len(ea) != len(eb) {
		return false
	}
	for k, e := range ea {
		if eb[k] != e {
			return false
		}
	}
	return true
}

// viewAt returns the remembered view of revision rev, if any.
func (f *Federator) viewAt(rev int64) (*catalog.View, bool) {
	f.historyMu.Lock()
	defer f.historyMu.Unlock()
	for i := len(f.history) - 1; i >= 0; i-- {
		if f.history[i].Revision == rev {
			return f.history[i], true
		}
	}
	return nil, false
}

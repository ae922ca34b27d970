package federator

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
)

// runMirror keeps f.feed equal to the federation in etcd: list, then watch
// from the list revision; a compacted or broken watch re-lists. It returns
// when ctx ends.
func (f *Federator) runMirror(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.mirrorOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		f.metrics.relists.Inc()
		if errors.Is(err, store.ErrCompacted) {
			f.log.Info("catalog watch compacted; re-listing", "err", err)
			backoff = 100 * time.Millisecond
		} else {
			f.log.Warn("catalog watch failed; re-listing", "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Federator) mirrorOnce(ctx context.Context) error {
	list, rev, err := f.store.List(ctx, store.Prefix)
	if err != nil {
		return err
	}
	entries := make(map[string]*causewayv1.Entry, len(list))
	for _, e := range list {
		entries[e.GetKey()] = e
	}
	f.publishEntries(maps.Clone(entries), rev)
	f.markSynced()

	// Watch batches are applied to entries at once; views (an O(n) copy
	// and index each) are published at most every mirrorThrottle, so a
	// burst of thousands of single-key batches costs a few copies, not
	// thousands.
	var (
		mu      sync.Mutex // guards entries, lastRev, dirty
		lastRev = rev
		dirty   bool
	)
	kick := make(chan struct{}, 1)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		for {
			select {
			case <-wctx.Done():
				return
			case <-kick:
			}
			start := time.Now()
			mu.Lock()
			var (
				snap map[string]*causewayv1.Entry
				rev  int64
			)
			if dirty {
				snap, rev, dirty = maps.Clone(entries), lastRev, false
			}
			mu.Unlock()
			if snap != nil {
				f.publishEntries(snap, rev)
			}
			// Building a view is O(catalog): at most a fifth of the time
			// goes to it, however large the federation.
			t := time.NewTimer(max(mirrorThrottle, 4*time.Since(start)))
			select {
			case <-wctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
	return f.store.Watch(wctx, rev+1, func(b store.Batch) error {
		mu.Lock()
		for _, c := range b.Changes {
			rel := store.RelativeKey(c.Key)
			if c.Deleted {
				delete(entries, rel)
			} else if c.Entry != nil {
				entries[rel] = c.Entry
			}
		}
		lastRev, dirty = b.Revision, true
		mu.Unlock()
		select {
		case kick <- struct{}{}:
		default:
		}
		return nil
	})
}

// mirrorThrottle is the shortest time between two published views.
const mirrorThrottle = 20 * time.Millisecond

// historySize is how many recent views the federator keeps so reconnecting
// catalog clients can resume with a delta.
const historySize = 8

// publishEntries makes the view of entries (a map the caller hands over)
// at rev current, with every published trust bundle replaced by what this
// cluster trusts of it (trustKeeper.filter).
func (f *Federator) publishEntries(entries map[string]*causewayv1.Entry, rev int64) {
	f.publishMu.Lock()
	defer f.publishMu.Unlock()
	f.trust.filter(entries)
	f.publishView(catalog.NewView(entries, rev))
}

// republishTrust rebuilds the current view after a trust change that no
// etcd change brought (an operator's TrustCluster, a new own bundle). The
// view keeps its revision, so it is not offered for resuming: a watcher
// resuming from that revision gets a snapshot.
func (f *Federator) republishTrust() {
	f.publishMu.Lock()
	defer f.publishMu.Unlock()
	v := f.feed.View()
	if v == nil {
		return
	}
	entries := maps.Clone(v.Entries())
	maps.Copy(entries, f.trust.published())
	f.trust.filter(entries)
	nv := catalog.NewView(entries, v.Revision)
	f.historyMu.Lock()
	f.history = slices.DeleteFunc(f.history, func(h *catalog.View) bool { return h.Revision == v.Revision })
	f.historyMu.Unlock()
	f.feed.Publish(nv)
}

// publishView makes v current and remembers it for resuming watchers.
func (f *Federator) publishView(v *catalog.View) {
	f.historyMu.Lock()
	if len(f.history) == historySize {
		copy(f.history, f.history[1:])
		f.history = f.history[:historySize-1]
	}
	f.history = append(f.history, v)
	f.historyMu.Unlock()
	f.feed.Publish(v)
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

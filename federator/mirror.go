package federator

import (
	"context"
	"errors"
	"maps"
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
	f.feed.Publish(catalog.NewView(entries, rev))
	f.markSynced()
	return f.store.Watch(ctx, rev+1, func(b store.Batch) error {
		next := maps.Clone(entries)
		for _, c := range b.Changes {
			rel := store.RelativeKey(c.Key)
			if c.Deleted {
				delete(next, rel)
			} else if c.Entry != nil {
				next[rel] = c.Entry
			}
		}
		entries = next
		f.feed.Publish(catalog.NewView(entries, b.Revision))
		return nil
	})
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrCompacted means the watch's start revision was compacted: re-list.
var ErrCompacted = errors.New("store: watch revision compacted")

// Change is one event of a watch: an upsert (Entry set) or a delete.
type Change struct {
	// Key is the full etcd key.
	Key string
	// Entry is the decoded record; nil for deletes, for undecodable values
	// and for keys that are not catalog entries.
	Entry *causewayv1.Entry
	// Deleted is true when the key was removed (or its lease expired), or
	// now holds a gateway record without a lease: such a record is not a
	// live instance (a gateway's record always carries its session's
	// lease), so readers ignore it.
	Deleted bool
	// Undecodable is true when the new value does not decode or has a
	// schema version this build does not read (counted and logged).
	// Readers keep the last good value of the key: a bad write is never a
	// deletion, so a stray or hostile write cannot make a record vanish.
	Undecodable bool
}

// Batch is the changes of one etcd watch response, all at Revision.
type Batch struct {
	Changes  []Change
	Revision int64
}

// Watch calls fn with every batch of changes under Prefix after revision
// fromRev-1 (so pass the list revision + 1). It returns ErrCompacted when
// the revision is gone, ctx.Err() when ctx ends, fn's error, or another
// watch error; a stream cut by an etcd leader change is resumed.
func (s *Store) Watch(ctx context.Context, fromRev int64, fn func(Batch) error) error {
	for {
		next, err := s.watchOnce(ctx, fromRev, fn)
		// A stream cut by a leader change (WithRequireLeader) resumes from
		// the next revision instead of making the caller re-list.
		if errors.Is(err, rpctypes.ErrNoLeader) && ctx.Err() == nil {
			fromRev = next
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		return err
	}
}

// watchOnce runs one watch stream from fromRev; it returns the revision to
// resume from and why it ended.
func (s *Store) watchOnce(ctx context.Context, fromRev int64, fn func(Batch) error) (int64, error) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev), clientv3.WithPrevKV())
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fromRev, fmt.Errorf("watch from %d (compacted at %d): %w", fromRev, resp.CompactRevision, ErrCompacted)
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fromRev, fmt.Errorf("watch from %d: %w", fromRev, ErrCompacted)
			}
			if errors.Is(err, rpctypes.ErrNoLeader) {
				return fromRev, err
			}
			return fromRev, fmt.Errorf("watch %s: %w", Prefix, err)
		}
		if len(resp.Events) == 0 {
			continue
		}
		b := Batch{Revision: resp.Header.Revision, Changes: make([]Change, 0, len(resp.Events))}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			kind, _, err := ParseKey(key)
			if err != nil || kind == KindLeaders {
				continue
			}
			if kind == KindVIPs {
				s.noteVIPEvent(key, ev)
				continue
			}
			if ev.Type == clientv3.EventTypeDelete {
				b.Changes = append(b.Changes, Change{Key: key, Deleted: true})
				continue
			}
			if kind == KindGateways && ev.Kv.Lease == 0 {
				s.log.Warn("ignoring a gateway record without a lease (not written by a federator)", "key", key)
				b.Changes = append(b.Changes, Change{Key: key, Deleted: true})
				continue
			}
			e := s.decode(key, ev.Kv.Value)
			// An undecodable new value is not a deletion: readers keep the
			// last good value (s.decode counted and logged it).
			b.Changes = append(b.Changes, Change{Key: key, Entry: e, Undecodable: e == nil})
		}
		fromRev = resp.Header.Revision + 1
		if err := fn(b); err != nil {
			return fromRev, err
		}
	}
	if err := ctx.Err(); err != nil {
		return fromRev, err
	}
	return fromRev, fmt.Errorf("watch %s: channel closed", Prefix)
}

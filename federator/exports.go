package federator

import (
	"context"
	"sync"
	"sync/atomic"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/lib/retry"
	"google.golang.org/protobuf/proto"
)

// setExports records the source's export set, rebuilds the served view
// (this cluster's exports in it come from the source) and schedules a
// reconcile. The reconcile is scheduled before exportsKnown is closed:
// runExports, waiting on it at the start of a term, schedules one too and
// then finds this one still pending, so the first publish costs one
// export pass, not two (a second one right after the first diffed
// against a mirror that did not show the first's writes yet, and
// rewrote them one by one).
func (f *Federator) setExports(_ context.Context, recs []*causewayv1.ExportRecord) error {
	byKey := make(map[catalog.ServiceKey]*causewayv1.ExportRecord, len(recs))
	for _, x := range recs {
		byKey[catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}] = x
	}
	f.exportsMu.Lock()
	f.desiredExports, f.desiredByKey = recs, byKey
	f.desiredGen++
	f.exportsMu.Unlock()
	f.kickView()
	f.kickExports()
	f.knownOnce.Do(func() { close(f.exportsKnown) })
	return nil
}

// sourceExports is what the source last published, by service; known is
// false until it has published once.
func (f *Federator) sourceExports() (byKey map[catalog.ServiceKey]*causewayv1.ExportRecord, known bool) {
	f.exportsMu.Lock()
	defer f.exportsMu.Unlock()
	return f.desiredByKey, f.desiredByKey != nil
}

// sourceExportsGen is sourceExports with the generation of the set: it
// changes at every publish of the source, so callers can keep what they
// derived from a set until it does.
func (f *Federator) sourceExportsGen() (byKey map[catalog.ServiceKey]*causewayv1.ExportRecord, gen uint64, known bool) {
	f.exportsMu.Lock()
	defer f.exportsMu.Unlock()
	return f.desiredByKey, f.desiredGen, f.desiredByKey != nil
}

// exportDrifted reports whether an upsert of one of this cluster's export
// keys says something the source does not: a write this federator did not
// make, which the export side must undo.
func (f *Federator) exportDrifted(x *causewayv1.ExportRecord) bool {
	want, known := f.sourceExports()
	if !known {
		return false
	}
	d, ok := want[catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}]
	return !ok || !SameExport(x, d)
}

// runExports makes etcd hold exactly the desired exports of this cluster,
// at the start of the term (once the source has published), when the
// source changes and when the mirror sees this cluster's exports in etcd
// differ from it, retrying with back-off while etcd fails.
func (f *Federator) runExports(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-f.exportsKnown:
		f.kickExports()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.exportsChanged:
		}
		var backoff retry.Backoff
		for {
			select { // diff against a synced mirror only
			case <-ctx.Done():
				return
			case <-f.synced:
			}
			f.exportsMu.Lock()
			desired := f.desiredExports
			f.exportsMu.Unlock()
			err := f.reconcileExports(ctx, desired)
			if err == nil || ctx.Err() != nil {
				break
			}
			f.metrics.reconcileErrors.WithLabelValues("export").Inc()
			f.log.Warn("publish exports failed; retrying", "err", err, "in", backoff.Peek())
			if !backoff.Wait(ctx) {
				return
			}
		}
	}
}

// storedOwnExports is this cluster's exports in etcd as of the last view
// the mirror built (a value that does not decode counts as absent).
func (f *Federator) storedOwnExports() map[catalog.ServiceKey]*causewayv1.ExportRecord {
	if m := f.storedOwn.Load(); m != nil {
		return *m
	}
	return nil
}

// reconcileExports makes etcd hold exactly desired as this cluster's
// exports. It diffs against the mirror of etcd, so unchanged exports are
// not rewritten (no etcd churn, no watch events for peers). A write of a
// record the source did not change since the last pass (etcd lost it, or
// someone changed it) is counted as healed.
func (f *Federator) reconcileExports(ctx context.Context, desired []*causewayv1.ExportRecord) error {
	stored := f.storedOwnExports()
	f.exportsMu.Lock()
	last := f.reconciled
	f.exportsMu.Unlock()
	want := make(map[catalog.ServiceKey]*causewayv1.ExportRecord, len(desired))
	var changed, created []*causewayv1.ExportRecord
	heals := 0
	for _, x := range desired {
		k := catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}
		want[k] = x
		have, ok := stored[k]
		switch {
		case ok && SameExport(have, x):
			continue
		case ok:
			changed = append(changed, x)
		default:
			created = append(created, x)
		}
		if last[k] == x {
			heals++
		}
	}
	// New exports go in batches; a batch that meets an existing key (the
	// mirror lagged, or the key holds a bad value) falls back to one
	// read-modify-write per record.
	rest, err := f.store.CreateExports(ctx, created)
	if err != nil {
		return err
	}
	changed = append(changed, rest...)
	written := len(created) - len(rest)
	// Each write is a read-modify-write transaction (it keeps the stored
	// creation time): run them concurrently, etcd batches them.
	written += len(changed)
	if err := forEachParallel(ctx, changed, exportWriters, func(ctx context.Context, x *causewayv1.ExportRecord) error {
		return f.store.PutExport(ctx, x)
	}); err != nil {
		return err
	}
	// What the mirror shows of this cluster's exports, and what the last
	// pass wrote: the mirror may not show that write yet (a service added
	// and withdrawn at once), and waiting for it would leave the export
	// in etcd until the next periodic pass.
	gone := map[catalog.ServiceKey]bool{}
	for k := range stored {
		gone[k] = want[k] == nil
	}
	for k := range last {
		if _, ok := stored[k]; !ok && want[k] == nil {
			gone[k] = true
		}
	}
	for k, del := range gone {
		if !del {
			continue
		}
		if err := f.store.DeleteExport(ctx, k.Namespace, k.Name, f.cfg.Cluster); err != nil {
			return err
		}
		if last[k] == nil {
			heals++ // never exported by this source: someone else wrote it
		}
		f.log.Info("export withdrawn", "service", k.String())
	}
	if heals > 0 {
		f.metrics.healed.WithLabelValues("export").Add(float64(heals))
		f.log.Warn("own exports in etcd were deleted, corrupted or changed; put back", "records", heals)
	}
	if written > 0 {
		f.log.Debug("exports published", "written", written, "total", len(desired))
	}
	f.exportsMu.Lock()
	f.reconciled = want
	f.exportsMu.Unlock()
	f.metrics.exports.Set(float64(len(desired)))
	return nil
}

// SameExport reports whether the stored export have already says what x
// says; the store sets schema version and creation time.
func SameExport(have, x *causewayv1.ExportRecord) bool {
	c := proto.Clone(x).(*causewayv1.ExportRecord)
	c.SchemaVersion, c.Created = have.GetSchemaVersion(), have.GetCreated()
	return proto.Equal(have, c)
}

// exportWriters bounds concurrent export writes.
const exportWriters = 32

// forEachParallel calls fn for every item with at most n calls at once and
// returns the first error (the rest are cancelled).
func forEachParallel[T any](ctx context.Context, items []T, n int, fn func(context.Context, T) error) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		next     atomic.Int64
	)
	for range min(n, len(items)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, items[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

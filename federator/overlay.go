package federator

import (
	"maps"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// overlayEntry is the served entry of one of this cluster's exports, kept
// while neither the source's record nor its creation time changes, so
// Catalog.Watch (which compares entries by pointer) sends it once.
type overlayEntry struct {
	src     *causewayv1.ExportRecord
	created *timestamppb.Timestamp
	entry   *causewayv1.Entry
}

// overlayResult is what overlayEntries returned last and the inputs it
// came from: while neither the source's set nor this cluster's exports in
// etcd change, the served entries are those again.
type overlayResult struct {
	srcGen  uint64
	stored  *map[catalog.ServiceKey]*causewayv1.ExportRecord
	entries []*causewayv1.Entry
}

// buildView builds the view the federator serves from the mirror of etcd
// raw: once the export source has published, this cluster's exports in it
// are the source's, never etcd's, so a forged own export cannot steer this
// cluster's ingress gateway. It also records this cluster's exports as
// etcd holds them, for the export side. It costs a copy of the catalog
// and an index of it (catalog.NewView), plus work in proportion to this
// cluster's exports only when they or the source changed.
func (f *Federator) buildView(raw *rawMirror, rev int64) *catalog.View {
	src, gen, known := f.sourceExportsGen()
	stored := raw.storedExports()
	f.storedOwn.Store(stored)
	out := maps.Clone(raw.entries)
	if known {
		for _, e := range f.overlayEntries(src, gen, stored) {
			out[e.GetKey()] = e
		}
		for rel, e := range raw.ownExports {
			if out[rel] == e { // etcd's, not replaced by the source's
				delete(out, rel)
			}
		}
	}
	// Published trust bundles are replaced by what this cluster trusts of
	// them (trustKeeper.filter).
	f.trust.filter(out, raw.bundles)
	v := catalog.NewView(out, rev)
	if known {
		f.firstOverlaid.CompareAndSwap(nil, v)
	}
	return v
}

// overlayEntries returns the served entries of the source's exports src
// (of generation gen). Each keeps the creation time etcd holds for it in
// stored (it decides conflicts, and peers see that one), or the time it
// was first served. The caller must not modify the slice.
func (f *Federator) overlayEntries(src map[catalog.ServiceKey]*causewayv1.ExportRecord, gen uint64,
	stored *map[catalog.ServiceKey]*causewayv1.ExportRecord) []*causewayv1.Entry {
	f.overlayMu.Lock()
	defer f.overlayMu.Unlock()
	if last := f.overlaid; last.entries != nil && last.srcGen == gen && last.stored == stored {
		return last.entries
	}
	next := make(map[catalog.ServiceKey]overlayEntry, len(src))
	out := make([]*causewayv1.Entry, 0, len(src))
	for k, x := range src {
		old, had := f.overlay[k]
		created := (*stored)[k].GetCreated()
		if created == nil {
			created = old.created
		}
		if created == nil {
			created = timestamppb.New(time.Now())
		}
		if !had || (old.src != x && !proto.Equal(old.src, x)) || (old.created != created && !proto.Equal(old.created, created)) {
			old = overlayEntry{src: x, created: created, entry: &causewayv1.Entry{
				Key:    ownExportKey(k, f.cfg.Cluster),
				Record: &causewayv1.Entry_Export{Export: servedExport(x, created)},
			}}
		}
		old.src = x // equal content: the next comparison is by pointer
		next[k] = old
		out = append(out, old.entry)
	}
	f.overlay = next
	f.overlaid = overlayResult{srcGen: gen, stored: stored, entries: out}
	return out
}

// ownExportKey is the relative key of cluster's export of k.
func ownExportKey(k catalog.ServiceKey, cluster string) string {
	return store.RelativeKey(store.ExportKeyOf(cluster, k.Namespace, k.Name))
}

// servedExport is the source's record x as served, with the stored schema
// version and creation time. It is a shallow copy: its ports, endpoints
// and zone counts are x's (neither the source nor anyone reading a view
// modifies a published record; the store clones before it sets fields),
// so serving the source's exports does not hold a second deep copy of
// them.
func servedExport(x *causewayv1.ExportRecord, created *timestamppb.Timestamp) *causewayv1.ExportRecord {
	r := &causewayv1.ExportRecord{}
	dst := r.ProtoReflect()
	src := x.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	r.SchemaVersion, r.Created = store.SchemaVersion, created
	return r
}

package federator

import (
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"google.golang.org/protobuf/proto"
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

// buildView builds the view the federator serves from the mirror of etcd
// (raw, keyed by relative key): once the export source has published,
// this cluster's exports in it are the source's, never etcd's, so a
// forged own export cannot steer this cluster's ingress gateway. It also
// records this cluster's exports as etcd holds them, for the export side.
func (f *Federator) buildView(raw map[string]*causewayv1.Entry, rev int64) *catalog.View {
	own := f.cfg.Cluster
	src, known := f.sourceExports()
	out := make(map[string]*causewayv1.Entry, len(raw)+len(src))
	stored := map[catalog.ServiceKey]*causewayv1.ExportRecord{}
	for k, e := range raw {
		if x := e.GetExport(); x != nil && x.GetCluster() == own {
			stored[catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}] = x
			if known {
				continue
			}
		}
		out[k] = e
	}
	f.storedOwn.Store(&stored)
	if known {
		for _, e := range f.overlayEntries(src, stored) {
			out[e.GetKey()] = e
		}
	}
	// Published trust bundles are replaced by what this cluster trusts of
	// them (trustKeeper.filter).
	f.trust.filter(out)
	if !known {
		return catalog.NewView(out, rev)
	}
	v := catalog.NewView(out, rev)
	f.firstOverlaid.CompareAndSwap(nil, v)
	return v
}

// overlayEntries returns the served entries of the source's exports. Each
// keeps the creation time etcd holds for it (it decides conflicts, and
// peers see that one), or the time it was first served.
func (f *Federator) overlayEntries(src, stored map[catalog.ServiceKey]*causewayv1.ExportRecord) []*causewayv1.Entry {
	f.overlayMu.Lock()
	defer f.overlayMu.Unlock()
	next := make(map[catalog.ServiceKey]overlayEntry, len(src))
	out := make([]*causewayv1.Entry, 0, len(src))
	for k, x := range src {
		old, had := f.overlay[k]
		created := stored[k].GetCreated()
		if created == nil {
			created = old.created
		}
		if created == nil {
			created = timestamppb.New(time.Now())
		}
		if !had || (old.src != x && !proto.Equal(old.src, x)) || !proto.Equal(old.created, created) {
			r := proto.Clone(x).(*causewayv1.ExportRecord)
			r.SchemaVersion, r.Created = store.SchemaVersion, created
			old = overlayEntry{src: x, created: created, entry: &causewayv1.Entry{
				Key:    ownExportKey(k, f.cfg.Cluster),
				Record: &causewayv1.Entry_Export{Export: r},
			}}
		}
		old.src = x // equal content: the next comparison is by pointer
		next[k] = old
		out = append(out, old.entry)
	}
	f.overlay = next
	return out
}

// ownExportKey is the relative key of cluster's export of k.
func ownExportKey(k catalog.ServiceKey, cluster string) string {
	return store.RelativeKey(store.ExportKeyOf(cluster, k.Namespace, k.Name))
}

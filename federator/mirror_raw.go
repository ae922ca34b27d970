package federator

import (
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
)

// rawMirror is the mirror of etcd a served view is built from: every
// entry by relative key and, kept up to date as entries change, the ones
// buildView replaces (this cluster's exports, the trust bundles), so that
// rebuilding a view after a watch batch does not scan the whole catalog
// for them. It is not safe for concurrent use (mirrorState.mu guards it).
type rawMirror struct {
	own        string                       // this cluster
	entries    map[string]*causewayv1.Entry // by relative key
	ownExports map[string]*causewayv1.Entry // this cluster's exports in entries, by relative key
	bundles    map[string]*causewayv1.Entry // the entries under the bundles prefix, by relative key
	// stored is ownExports by service, as storedExports last built it;
	// nil once an own export changed. Published to the export side
	// (Federator.storedOwn), so never modified: replaced.
	stored *map[catalog.ServiceKey]*causewayv1.ExportRecord
}

// bundlesPrefix is the relative key prefix of the trust bundles.
const bundlesPrefix = store.KindBundles + "/"

// newRawMirror returns the mirror of entries (keyed by relative key) for
// cluster own; it takes entries over.
func newRawMirror(own string, entries map[string]*causewayv1.Entry) *rawMirror {
	m := &rawMirror{own: own, entries: entries, ownExports: map[string]*causewayv1.Entry{}, bundles: map[string]*causewayv1.Entry{}}
	for k, e := range entries {
		m.index(k, e)
	}
	return m
}

// index records e (held by entries under rel) in the indexes it belongs to.
func (m *rawMirror) index(rel string, e *causewayv1.Entry) {
	if x := e.GetExport(); x != nil && x.GetCluster() == m.own {
		m.ownExports[rel] = e
		m.stored = nil
	}
	if strings.HasPrefix(rel, bundlesPrefix) {
		m.bundles[rel] = e
	}
}

// unindex removes what rel held from the indexes.
func (m *rawMirror) unindex(rel string) {
	if _, ok := m.ownExports[rel]; ok {
		delete(m.ownExports, rel)
		m.stored = nil
	}
	delete(m.bundles, rel)
}

// set makes e the entry of rel.
func (m *rawMirror) set(rel string, e *causewayv1.Entry) {
	m.unindex(rel)
	m.entries[rel] = e
	m.index(rel, e)
}

// delete removes the entry of rel.
func (m *rawMirror) delete(rel string) {
	m.unindex(rel)
	delete(m.entries, rel)
}

// storedExports returns this cluster's exports in the mirror by service
// (a value that does not decode counts as absent). The map is shared
// until an own export changes: callers must not modify it.
func (m *rawMirror) storedExports() *map[catalog.ServiceKey]*causewayv1.ExportRecord {
	if m.stored == nil {
		s := make(map[catalog.ServiceKey]*causewayv1.ExportRecord, len(m.ownExports))
		for _, e := range m.ownExports {
			x := e.GetExport()
			s[catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}] = x
		}
		m.stored = &s
	}
	return m.stored
}

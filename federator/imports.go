package federator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"google.golang.org/protobuf/proto"
)

// runImports recomputes this cluster's imports after every catalog change.
func (f *Federator) runImports(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-f.synced:
	}
	f.pendingImports = map[catalog.ServiceKey]pendingImport{} // per term: owned by this goroutine
	var last *importPass                                      // nil: the next pass looks at every service
	for {
		changed := f.feed.Changed()
		v := f.feed.View()
		pass, err := f.reconcileImports(ctx, v, last)
		if err != nil && ctx.Err() == nil {
			f.metrics.reconcileErrors.WithLabelValues("import").Inc()
			f.log.Warn("reconcile imports failed; retrying", "err", err)
			last = nil
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		last = pass
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-f.importsKicked:
			last = nil // the sink's addresses may have changed anywhere
		}
	}
}

// importPass is what a completed import pass looked at, so the next pass
// skips the services whose exports and import did not change since.
type importPass struct {
	view *catalog.View
	mine map[catalog.ServiceKey]*causewayv1.ImportRecord
}

// pendingImport is an import write (rec nil: a delete) the mirrored view
// may not show yet.
type pendingImport struct {
	rec *causewayv1.ImportRecord
	rev int64
}

// ownImports is this cluster's imports as of v, overlaid with this
// replica's writes that v does not show yet, so back-to-back passes never
// repeat a write or hand one egress port to two services.
func (f *Federator) ownImports(v *catalog.View) map[catalog.ServiceKey]*causewayv1.ImportRecord {
	base := v.Imports(f.cfg.Cluster)
	for k, p := range f.pendingImports {
		if p.rev <= v.Revision {
			delete(f.pendingImports, k) // the view has caught up
		}
	}
	if len(f.pendingImports) == 0 {
		return base
	}
	mine := make(map[catalog.ServiceKey]*causewayv1.ImportRecord, len(base))
	maps.Copy(mine, base)
	for k, p := range f.pendingImports {
		if p.rec == nil {
			delete(mine, k)
		} else {
			mine[k] = p.rec
		}
	}
	return mine
}

// reconcileImports makes this cluster's import records match the exports in v.
func (f *Federator) reconcileImports(ctx context.Context, v *catalog.View, last *importPass) (*importPass, error) {
	own := f.cfg.Cluster
	desired := map[catalog.ServiceKey]bool{}
	mine := f.ownImports(v)
	type change struct {
		k    catalog.ServiceKey
		want *causewayv1.ImportRecord
		have *causewayv1.ImportRecord
	}
	var (
		changes  []change
		needVIPs []string
	)
	for _, k := range v.ExportedServices() {
		desired[k] = true
		if last != nil && mine[k] == last.mine[k] && sameRecords(v.Exports(k), last.view.Exports(k)) {
			continue // records are shared between views while unchanged
		}
		want := MergeImport(own, v.Exports(k))
		want.SchemaVersion = store.SchemaVersion // as stored, so Equal compares content
		have := mine[k]
		if f.cfg.Sink != nil {
			// The sink's address, once it has one; until then (sink
			// starting, Service being created) the stored one stays.
			if want.GetType() == causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP {
				want.Ips = f.cfg.Sink.Addresses(k)
				if want.Ips == nil {
					want.Ips = have.GetIps()
				}
			}
		} else if want.GetType() == causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP {
			// The address is the service's reservation, whatever the
			// import said: usually the cached one it already has.
			want.Ips = have.GetIps()
			needVIPs = append(needVIPs, k.String())
		}
		changes = append(changes, change{k: k, want: want, have: have})
	}
	if len(needVIPs) > 0 {
		vips, err := f.store.AllocateVIPs(ctx, own, needVIPs, f.cfg.VIPRanges, heldVIPs(mine))
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			if addr, ok := vips[c.k.String()]; ok {
				c.want.Ips = []string{addr.String()}
			}
		}
	}
	egress := newEgressAllocator(f.cfg.EgressPorts, mine)
	var puts []*causewayv1.ImportRecord
	var putKeys []catalog.ServiceKey
	for _, c := range changes {
		if !f.cfg.EgressPorts.IsZero() {
			if err := egress.assign(c.want, c.have); err != nil {
				return nil, fmt.Errorf("import %s: %w", c.k, err)
			}
		}
		if c.have != nil && proto.Equal(c.want, c.have) {
			continue
		}
		puts, putKeys = append(puts, c.want), append(putKeys, c.k)
	}
	if err := f.putImports(ctx, puts, putKeys); err != nil {
		return nil, err
	}
	if err := f.deleteImports(ctx, mine, desired); err != nil {
		return nil, err
	}
	f.metrics.imports.Set(float64(len(desired)))
	return &importPass{view: v, mine: f.ownImports(v)}, nil
}

// putImports writes changed imports (guarded by their reservations when
// the addresses are clusterset IPs this federator allocated) and remembers
// them until the view shows them.
func (f *Federator) putImports(ctx context.Context, puts []*causewayv1.ImportRecord, keys []catalog.ServiceKey) error {
	if len(puts) == 0 {
		return nil
	}
	put := f.store.PutImportsAt
	if f.cfg.Sink == nil { // the addresses are reservations: guard them
		put = func(ctx context.Context, recs []*causewayv1.ImportRecord) (int64, error) {
			return f.store.PutReservedImportsAt(ctx, f.cfg.Cluster, recs)
		}
	}
	rev, err := put(ctx, puts)
	if err != nil {
		return err
	}
	for i, k := range keys {
		f.pendingImports[k] = pendingImport{rec: puts[i], rev: rev}
		if len(puts) <= 20 {
			f.log.Info("import updated", "service", k.String(), "ips", puts[i].Ips, "clusters", puts[i].Clusters)
		}
	}
	if len(puts) > 20 {
		f.log.Info("imports updated", "count", len(puts))
	}
	return nil
}

// deleteImports removes the imports of mine no longer desired, releasing
// their clusterset IPs (unless the sink owns the addresses).
func (f *Federator) deleteImports(ctx context.Context, mine map[catalog.ServiceKey]*causewayv1.ImportRecord, desired map[catalog.ServiceKey]bool) error {
	own := f.cfg.Cluster
	for k, imp := range mine {
		if desired[k] {
			continue
		}
		rev, err := f.store.DeleteImportAt(ctx, own, k.Namespace, k.Name)
		if err != nil {
			return err
		}
		f.pendingImports[k] = pendingImport{rev: rev}
		if f.cfg.Sink != nil {
			f.log.Info("import removed", "service", k.String())
			continue // the addresses belong to the sink's objects
		}
		for _, s := range imp.GetIps() {
			if ip, err := netip.ParseAddr(s); err == nil {
				if err := f.store.ReleaseVIP(ctx, own, k.Namespace, k.Name, ip); err != nil {
					return fmt.Errorf("remove import %s: %w", k, err)
				}
			}
		}
		f.log.Info("import removed", "service", k.String())
	}
	return nil
}

// heldVIPs is the clusterset IP each import carries, by "ns/name".
func heldVIPs(imports map[catalog.ServiceKey]*causewayv1.ImportRecord) map[string]netip.Addr {
	out := make(map[string]netip.Addr, len(imports))
	for k, imp := range imports {
		for _, s := range imp.GetIps() {
			if ip, err := netip.ParseAddr(s); err == nil {
				out[k.String()] = ip
				break
			}
		}
	}
	return out
}

// MergeImport merges the exports of one service into cluster's import by
// the KEP-1645 rules: ports are the union (merged by name, then by
// protocol and port); other properties come from the oldest export, ties
// broken by cluster name. The result has no IPs.
func MergeImport(cluster string, exports []*causewayv1.ExportRecord) *causewayv1.ImportRecord {
	xs := byAge(exports)
	winner := xs[0]
	imp := &causewayv1.ImportRecord{
		Namespace:       winner.GetNamespace(),
		Name:            winner.GetName(),
		Cluster:         cluster,
		Type:            winner.GetType(),
		SessionAffinity: winner.GetSessionAffinity(),
	}
	if winner.GetSessionAffinity() == "ClientIP" {
		imp.SessionAffinityTimeoutSeconds = winner.GetSessionAffinityTimeoutSeconds()
	}
	type protoPort struct {
		proto causewayv1.Protocol
		port  uint32
	}
	byName := map[string]bool{}
	byProtoPort := map[protoPort]bool{}
	for _, x := range xs {
		imp.Clusters = append(imp.Clusters, x.GetCluster())
		for _, p := range x.GetPorts() {
			pp := protoPort{p.GetProtocol(), p.GetPort()}
			if (p.GetName() != "" && byName[p.GetName()]) || byProtoPort[pp] {
				continue
			}
			byName[p.GetName()] = true
			byProtoPort[pp] = true
			imp.Ports = append(imp.Ports, proto.Clone(p).(*causewayv1.ServicePort))
		}
	}
	sort.Strings(imp.Clusters)
	return imp
}

// egressAllocator hands out gateway egress ports to import ports, keeping
// every assignment an import already has.
type egressAllocator struct {
	r    PortRange
	used map[uint32]bool
	next uint32
}

func newEgressAllocator(r PortRange, imports map[catalog.ServiceKey]*causewayv1.ImportRecord) *egressAllocator {
	a := &egressAllocator{r: r, used: map[uint32]bool{}, next: uint32(r.Min)}
	for _, imp := range imports {
		for _, e := range imp.GetEgressPorts() {
			a.used[e.GetEgressPort()] = true
		}
	}
	return a
}

// ErrEgressPortsExhausted means the egress port range has no free port.
var ErrEgressPortsExhausted = errors.New("federator: egress port range exhausted")

// assign sets want's egress ports: the ones have already holds for the
// same protocol and port, new ones from the range for the rest. Ports
// have held that want no longer has are freed for later imports only
// (not reused in this pass), so a stale EndpointSlice never points at
// another service.
func (a *egressAllocator) assign(want, have *causewayv1.ImportRecord) error {
	type pp struct {
		proto causewayv1.Protocol
		port  uint32
	}
	old := map[pp]uint32{}
	for _, e := range have.GetEgressPorts() {
		old[pp{e.GetProtocol(), e.GetPort()}] = e.GetEgressPort()
	}
	want.EgressPorts = nil
	for _, p := range want.GetPorts() {
		k := pp{p.GetProtocol(), p.GetPort()}
		port, ok := old[k]
		if !ok {
			for a.next <= uint32(a.r.Max) && a.used[a.next] {
				a.next++
			}
			if a.next > uint32(a.r.Max) {
				return fmt.Errorf("egress port for %s: %w", portKey(p), ErrEgressPortsExhausted)
			}
			port = a.next
			a.used[port] = true
		}
		want.EgressPorts = append(want.EgressPorts, &causewayv1.EgressPort{Protocol: p.GetProtocol(), Port: p.GetPort(), EgressPort: port})
	}
	return nil
}

// sameRecords reports whether two export lists hold the same records.
func sameRecords(a, b []*causewayv1.ExportRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

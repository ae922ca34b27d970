package federator

import (
	"context"
	"fmt"
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
	for {
		changed := f.feed.Changed()
		if err := f.reconcileImports(ctx, f.feed.View()); err != nil && ctx.Err() == nil {
			f.metrics.reconcileErrors.WithLabelValues("import").Inc()
			f.log.Warn("reconcile imports failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// reconcileImports makes this cluster's import records match the exports in v.
func (f *Federator) reconcileImports(ctx context.Context, v *catalog.View) error {
	own := f.cfg.Cluster
	desired := map[catalog.ServiceKey]bool{}
	for _, k := range v.ExportedServices() {
		desired[k] = true
		want := MergeImport(own, v.Exports(k))
		want.SchemaVersion = store.SchemaVersion // as stored, so Equal compares content
		have, ok := v.Import(own, k)
		if ok {
			want.Ips = have.GetIps()
		}
		if want.GetType() == causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP && len(want.Ips) == 0 {
			ip, err := f.store.AllocateVIP(ctx, own, k.Namespace, k.Name, f.cfg.VIPRanges[0])
			if err != nil {
				return err
			}
			want.Ips = []string{ip.String()}
		}
		if ok && proto.Equal(want, have) {
			continue
		}
		if err := f.store.PutImport(ctx, want); err != nil {
			return err
		}
		f.log.Info("import updated", "service", k.String(), "ips", want.Ips, "clusters", want.Clusters)
	}
	for k, imp := range v.Imports(own) {
		if desired[k] {
			continue
		}
		if err := f.store.DeleteImport(ctx, own, k.Namespace, k.Name); err != nil {
			return err
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
	f.metrics.imports.Set(float64(len(desired)))
	return nil
}

// MergeImport merges the exports of one service into cluster's import by
// the KEP-1645 rules: ports are the union (merged by name, then by
// protocol and port); other properties come from the oldest export, ties
// broken by cluster name. The result has no IPs.
func MergeImport(cluster string, exports []*causewayv1.ExportRecord) *causewayv1.ImportRecord {
	xs := append([]*causewayv1.ExportRecord(nil), exports...)
	sort.SliceStable(xs, func(i, j int) bool {
		ti, tj := xs[i].GetCreated().AsTime(), xs[j].GetCreated().AsTime()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return xs[i].GetCluster() < xs[j].GetCluster()
	})
	winner := xs[0]
	imp := &causewayv1.ImportRecord{
		Namespace:       winner.GetNamespace(),
		Name:            winner.GetName(),
		Cluster:         cluster,
		Type:            winner.GetType(),
		SessionAffinity: winner.GetSessionAffinity(),
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

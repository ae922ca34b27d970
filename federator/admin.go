package federator

import (
	"context"
	"errors"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// AdminComponent is the SPIFFE path component of the identity the Admin
// service accepts: spiffe://<the federator's trust domain>/admin.
const AdminComponent = "admin"

// AdminOptions configures the Admin service. The zero value is valid.
type AdminOptions struct {
	// EtcdTimeout bounds each etcd read and write of the Admin API
	// (Status, ListClusters, Drain, Undrain, RemoveCluster), below the
	// CLI's deadline so that an unreachable etcd is reported as such. If
	// zero, 2s.
	EtcdTimeout time.Duration
	// VisibleTimeout bounds how long a write waits to show in the
	// federator's view before it answers, so that a read right after a
	// write sees it. The write stands either way. If zero, 2s.
	VisibleTimeout time.Duration
	// Now returns the time drain records are stamped with. If nil, time.Now.
	Now func() time.Time
}

// AdminServer serves the Admin gRPC service of a federator: reads from its
// mirror of etcd, writes through its store. Every method first checks that
// the caller is this cluster's admin identity.
type AdminServer struct {
	causewayv1.UnimplementedAdminServer
	f       *Federator
	opts    AdminOptions
	adminID certs.ID
	idErr   error // set when the trust domain makes no valid admin ID
}

var _ causewayv1.AdminServer = (*AdminServer)(nil)

// AdminServer returns the Admin gRPC service of f. Register it on the same
// mutual-TLS server as the Catalog.
func (f *Federator) AdminServer(o AdminOptions) *AdminServer {
	if o.EtcdTimeout == 0 {
		o.EtcdTimeout = 2 * time.Second
	}
	if o.VisibleTimeout == 0 {
		o.VisibleTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	id, err := certs.NewID(f.cfg.TrustDomain, AdminComponent)
	return &AdminServer{f: f, opts: o, adminID: id, idErr: err}
}

// authorize returns nil when the caller presented this cluster's admin
// identity. The TLS layer has already verified the chain.
func (s *AdminServer) authorize(ctx context.Context) (certs.ID, error) {
	if s.idErr != nil {
		return certs.ID{}, status.Errorf(codes.Internal, "admin API: %v", s.idErr)
	}
	id, err := callerID(ctx, "admin API")
	if err != nil {
		return certs.ID{}, err
	}
	if id != s.adminID {
		return id, status.Errorf(codes.PermissionDenied, "admin API: %s is not %s", id, s.adminID)
	}
	return id, nil
}

// ListClusters returns every member cluster.
func (s *AdminServer) ListClusters(ctx context.Context, _ *causewayv1.ListClustersRequest) (*causewayv1.ListClustersResponse, error) {
	if _, err := s.authorize(ctx); err != nil {
		return nil, err
	}
	v := s.f.feed.View()
	lctx, cancel := context.WithTimeout(ctx, s.opts.EtcdTimeout)
	leases, leaseErr := s.f.store.GatewayLeases(lctx)
	cancel()
	exports := map[string]uint32{}
	for _, k := range v.ExportedServices() {
		for _, x := range v.Exports(k) {
			exports[x.GetCluster()]++
		}
	}
	drains := drainsByCluster(v)
	resp := &causewayv1.ListClustersResponse{Revision: v.Revision}
	for _, c := range v.Clusters() {
		name := c.GetName()
		ci := &causewayv1.ClusterInfo{
			Name: name, Region: c.GetRegion(), Zone: c.GetZone(), TrustDomain: c.GetTrustDomain(),
			VipRanges: c.GetVipRanges(), Exports: exports[name], Local: name == s.f.cfg.Cluster,
			Drained: drains[name].whole, DrainedServices: drains[name].services,
		}
		ci.Trust, ci.TrustDetail, ci.Fingerprints = s.f.trust.status(name)
		for _, g := range v.Gateways(name) {
			gi := &causewayv1.GatewayInfo{Instance: g.GetInstance(), Addresses: g.GetAddresses()}
			switch l, ok := leases[name+"/"+g.GetInstance()]; {
			case leaseErr != nil:
				gi.LeaseState = causewayv1.LeaseState_LEASE_STATE_UNKNOWN
			case !ok || l.Expired:
				gi.LeaseState = causewayv1.LeaseState_LEASE_STATE_EXPIRED
			default:
				gi.LeaseState = causewayv1.LeaseState_LEASE_STATE_LIVE
				gi.LeaseTtlSeconds = int64(l.TTL / time.Second)
			}
			ci.Gateways = append(ci.Gateways, gi)
		}
		resp.Clusters = append(resp.Clusters, ci)
	}
	return resp, nil
}

// ListExports returns the exported services, optionally of one namespace.
func (s *AdminServer) ListExports(ctx context.Context, req *causewayv1.ListExportsRequest) (*causewayv1.ListExportsResponse, error) {
	if _, err := s.authorize(ctx); err != nil {
		return nil, err
	}
	ns := req.GetNamespace()
	if ns != "" && !names.IsDNSLabel(ns) {
		return nil, status.Errorf(codes.InvalidArgument, "namespace %q is not a DNS label", ns)
	}
	v := s.f.feed.View()
	resp := &causewayv1.ListExportsResponse{Revision: v.Revision}
	for _, k := range v.ExportedServices() {
		if ns != "" && k.Namespace != ns {
			continue
		}
		se := &causewayv1.ServiceExports{Namespace: k.Namespace, Name: k.Name}
		for _, x := range v.Exports(k) {
			se.Clusters = append(se.Clusters, &causewayv1.ClusterExport{
				Cluster: x.GetCluster(), Type: x.GetType(), Ports: x.GetPorts(),
				ReadyPerZone: x.GetReadyPerZone(), ReadyEndpoints: uint32(catalog.ReadyEndpoints(x)),
				Created: x.GetCreated(), Routing: x.GetRouting(), SessionAffinity: x.GetSessionAffinity(),
				Drained: v.Drained(x.GetCluster(), k),
			})
		}
		resp.Services = append(resp.Services, se)
	}
	return resp, nil
}

// ListImports returns one cluster's imports (this federator's when the
// request names none).
func (s *AdminServer) ListImports(ctx context.Context, req *causewayv1.ListImportsRequest) (*causewayv1.ListImportsResponse, error) {
	if _, err := s.authorize(ctx); err != nil {
		return nil, err
	}
	cluster := req.GetCluster()
	if cluster == "" {
		cluster = s.f.cfg.Cluster
	}
	if err := validCluster(cluster); err != nil {
		return nil, err
	}
	v := s.f.feed.View()
	if _, ok := v.Cluster(cluster); !ok {
		return nil, notMember(cluster)
	}
	resp := &causewayv1.ListImportsResponse{Cluster: cluster, Revision: v.Revision}
	imps := v.Imports(cluster)
	for _, k := range sortedKeys(imps) {
		imp := imps[k]
		resp.Imports = append(resp.Imports, &causewayv1.ImportInfo{
			Namespace: k.Namespace, Name: k.Name, Type: imp.GetType(), Ips: imp.GetIps(),
			Ports: imp.GetPorts(), Clusters: imp.GetClusters(), SessionAffinity: imp.GetSessionAffinity(),
		})
	}
	return resp, nil
}

// Status describes this federator.
func (s *AdminServer) Status(ctx context.Context, _ *causewayv1.StatusRequest) (*causewayv1.StatusResponse, error) {
	if _, err := s.authorize(ctx); err != nil {
		return nil, err
	}
	cfg := s.f.cfg
	v := s.f.feed.View()
	resp := &causewayv1.StatusResponse{
		Cluster: cfg.Cluster, Region: cfg.Region, Zone: cfg.Zone, TrustDomain: cfg.TrustDomain,
		CatalogRevision: v.Revision, Synced: !errors.Is(s.f.Ready(), ErrNotSynced), Counts: viewCounts(v, cfg.Cluster),
		IsLeader: s.f.IsLeader(),
	}
	ectx, cancel := context.WithTimeout(ctx, s.opts.EtcdTimeout)
	defer cancel()
	rev, err := s.f.store.Revision(ectx)
	if err != nil {
		resp.EtcdError = err.Error()
	} else {
		resp.EtcdReachable, resp.EtcdRevision = true, rev
		resp.Leader, _ = s.f.Leader(ectx) // empty when unknown
	}
	// The view is stale while the federator's etcd probe fails.
	switch down := s.f.EtcdDownSince(); {
	case !v.StaleSince.IsZero():
		resp.StaleSince = timestamppb.New(v.StaleSince)
	case !down.IsZero():
		resp.StaleSince = timestamppb.New(down)
	}
	return resp, nil
}

// Drain writes a drain record for a cluster or one service of it.
func (s *AdminServer) Drain(ctx context.Context, req *causewayv1.DrainRequest) (*causewayv1.DrainResponse, error) {
	caller, err := s.authorize(ctx)
	if err != nil {
		return nil, err
	}
	cluster, ns, name := req.GetCluster(), req.GetNamespace(), req.GetName()
	if err := validCluster(cluster); err != nil {
		return nil, err
	}
	if err := s.ownCluster("drain", cluster); err != nil {
		return nil, err
	}
	if err := validService(ns, name); err != nil {
		return nil, err
	}
	v := s.f.feed.View()
	if _, ok := v.Cluster(cluster); !ok {
		return nil, notMember(cluster)
	}
	if ns != "" {
		if _, ok := v.Export(catalog.ServiceKey{Namespace: ns, Name: name}, cluster); !ok {
			return nil, status.Errorf(codes.NotFound, "cluster %s does not export %s/%s", cluster, ns, name)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.EtcdTimeout)
	rec, created, err := s.f.store.CreateDrain(wctx, &causewayv1.DrainRecord{
		Cluster: cluster, Namespace: ns, Name: name, Reason: req.GetReason(), Since: timestamppb.New(s.opts.Now()),
	})
	cancel()
	if err != nil {
		return nil, etcdError(err)
	}
	key := store.RelativeKey(store.DrainKey(cluster, ns, name))
	if created {
		s.f.log.Info("drained", "target", drainTarget(cluster, ns, name), "reason", req.GetReason(), "by", caller.String())
	}
	s.waitVisible(ctx, func(v *catalog.View) bool { _, ok := v.Entries()[key]; return ok })
	return &causewayv1.DrainResponse{Changed: created, Drain: &causewayv1.DrainInfo{
		Cluster: rec.GetCluster(), Namespace: rec.GetNamespace(), Name: rec.GetName(),
		Reason: rec.GetReason(), Since: rec.GetSince(),
	}}, nil
}

// Undrain deletes a drain record.
func (s *AdminServer) Undrain(ctx context.Context, req *causewayv1.UndrainRequest) (*causewayv1.UndrainResponse, error) {
	caller, err := s.authorize(ctx)
	if err != nil {
		return nil, err
	}
	cluster, ns, name := req.GetCluster(), req.GetNamespace(), req.GetName()
	if err := validCluster(cluster); err != nil {
		return nil, err
	}
	if err := s.ownCluster("undrain", cluster); err != nil {
		return nil, err
	}
	if err := validService(ns, name); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.EtcdTimeout)
	removed, err := s.f.store.RemoveDrain(wctx, cluster, ns, name)
	cancel()
	if err != nil {
		return nil, etcdError(err)
	}
	if !removed {
		v := s.f.feed.View()
		if _, ok := v.Cluster(cluster); !ok {
			return nil, notMember(cluster)
		}
		// As Drain: a service the cluster does not export is a mistake
		// (a typo), not "not drained".
		if ns != "" {
			if _, ok := v.Export(catalog.ServiceKey{Namespace: ns, Name: name}, cluster); !ok {
				return nil, status.Errorf(codes.NotFound, "cluster %s does not export %s/%s", cluster, ns, name)
			}
		}
	} else {
		s.f.log.Info("undrained", "target", drainTarget(cluster, ns, name), "by", caller.String())
	}
	key := store.RelativeKey(store.DrainKey(cluster, ns, name))
	s.waitVisible(ctx, func(v *catalog.View) bool { _, ok := v.Entries()[key]; return !ok })
	return &causewayv1.UndrainResponse{Changed: removed}, nil
}

// RemoveCluster deletes a cluster's records from etcd.
func (s *AdminServer) RemoveCluster(ctx context.Context, req *causewayv1.RemoveClusterRequest) (*causewayv1.RemoveClusterResponse, error) {
	caller, err := s.authorize(ctx)
	if err != nil {
		return nil, err
	}
	name := req.GetName()
	if err := validCluster(name); err != nil {
		return nil, err
	}
	if err := s.ownCluster("clusters remove", name); err != nil {
		return nil, err
	}
	if !req.GetForce() {
		return nil, status.Errorf(codes.FailedPrecondition,
			"cluster %s is this federator's own cluster: stop its federator and gateways, then remove it as the clusterset admin "+
				"(`causeway clusters remove %s` with --etcd and the clusterset-admin etcd credentials), or pass --force", name, name)
	}
	v := s.f.feed.View()
	_, member := v.Cluster(name)
	if gws := v.Gateways(name); len(gws) > 0 && !req.GetForce() {
		return nil, status.Errorf(codes.FailedPrecondition,
			"cluster %s still has %d live gateway(s): stop its federator and gateways first, or pass --force", name, len(gws))
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.EtcdTimeout)
	r, err := s.f.store.RemoveCluster(wctx, name)
	cancel()
	if err != nil {
		return nil, etcdError(err)
	}
	if r.Total() == 0 && !member {
		return nil, notMember(name)
	}
	s.f.log.Info("cluster removed from the federation", "removed", name, "records", r.Total(), "by", caller.String())
	s.waitVisible(ctx, func(v *catalog.View) bool {
		_, ok := v.Cluster(name)
		return !ok && len(v.Gateways(name)) == 0
	})
	return &causewayv1.RemoveClusterResponse{
		Name: name, Exports: uint32(r.Exports), Gateways: uint32(r.Gateways), Drains: uint32(r.Drains),
		Imports: uint32(r.Imports), Vips: uint32(r.VIPs), Bundles: uint32(r.Bundles), Clusters: uint32(r.Clusters),
	}, nil
}

// ownCluster refuses a write about another cluster than this federator's
// (F4): a cluster's admin administers only its own cluster, and the
// federator's etcd user could not write another cluster's keys anyway.
// The message says how to do it as the clusterset admin.
func (s *AdminServer) ownCluster(verb, cluster string) error {
	if cluster == s.f.cfg.Cluster {
		return nil
	}
	return status.Errorf(codes.PermissionDenied,
		"%s %s: this federator administers only cluster %s; writes about another cluster need the clusterset admin: "+
			"run `causeway %s %s` with --etcd ENDPOINTS and the clusterset-admin etcd credentials "+
			"(--etcd-username %s --etcd-password-file FILE --etcd-ca FILE), or ask cluster %s's own federator",
		verb, cluster, s.f.cfg.Cluster, verb, cluster, store.ClustersetAdminUser, cluster)
}

// waitVisible waits, at most VisibleTimeout, until cond holds for the
// federator's view.
func (s *AdminServer) waitVisible(ctx context.Context, cond func(*catalog.View) bool) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.VisibleTimeout)
	defer cancel()
	for {
		changed := s.f.feed.Changed()
		if cond(s.f.feed.View()) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func validCluster(name string) error {
	if !names.IsDNSLabel(name) {
		return status.Errorf(codes.InvalidArgument, "cluster name %q is not a DNS label", name)
	}
	return nil
}

// validService accepts both empty (the whole cluster) or both DNS labels.
func validService(ns, name string) error {
	switch {
	case ns == "" && name == "":
		return nil
	case !names.IsDNSLabel(ns):
		return status.Errorf(codes.InvalidArgument, "namespace %q is not a DNS label", ns)
	case !names.IsDNSLabel(name):
		return status.Errorf(codes.InvalidArgument, "service name %q is not a DNS label", name)
	}
	return nil
}

func notMember(cluster string) error {
	return status.Errorf(codes.NotFound, "cluster %s is not a member of the federation", cluster)
}

// etcdError turns a store error into a gRPC status.
func etcdError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return status.Errorf(codes.DeadlineExceeded, "etcd: %v", err)
	}
	return status.Errorf(codes.Unavailable, "etcd: %v", err)
}

func drainTarget(cluster, ns, name string) string {
	if ns == "" {
		return cluster
	}
	return fmt.Sprintf("%s %s/%s", cluster, ns, name)
}

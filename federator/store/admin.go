package store

import (
	"context"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Revision returns etcd's current revision. It is a linearizable read, so
// it fails when etcd cannot be reached or has no quorum.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, ClusterKey(""), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read etcd revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// CreateDrain writes r unless a drain record already exists at its key
// (create-only transaction). It returns the record in effect and whether
// this call wrote it; an existing record keeps its reason and time.
func (s *Store) CreateDrain(ctx context.Context, r *causewayv1.DrainRecord) (*causewayv1.DrainRecord, bool, error) {
	key := DrainKey(r.GetCluster(), r.GetNamespace(), r.GetName())
	b, err := Encode(r)
	if err != nil {
		return nil, false, err
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, false, fmt.Errorf("drain %s: %w", key, err)
	}
	if resp.Succeeded {
		return r, true, nil
	}
	if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) == 1 {
		old := &causewayv1.DrainRecord{}
		if err := decodeInto(rr.Kvs[0].Value, old); err == nil {
			return old, false, nil
		}
	}
	// An undecodable record drains nothing readers can see: replace it.
	if err := s.put(ctx, key, r); err != nil {
		return nil, false, fmt.Errorf("drain %s: %w", key, err)
	}
	return r, true, nil
}

// RemoveDrain deletes a drain record (ns and svc empty: the whole-cluster
// one) and reports whether there was one.
func (s *Store) RemoveDrain(ctx context.Context, cluster, ns, svc string) (bool, error) {
	key := DrainKey(cluster, ns, svc)
	resp, err := s.cli.Delete(ctx, key)
	if err != nil {
		return false, fmt.Errorf("undrain %s: %w", key, err)
	}
	return resp.Deleted > 0, nil
}

// GatewayLease is the lease state of one gateway record.
type GatewayLease struct {
	// TTL is what is left of the lease; zero or less when it expired.
	TTL time.Duration
	// Expired is true when etcd no longer knows the lease.
	Expired bool
}

// GatewayLeases returns the lease of every gateway record, keyed by
// "cluster/instance".
func (s *Store) GatewayLeases(ctx context.Context) (map[string]GatewayLease, error) {
	// Not keys-only: etcd then leaves out the lease ID. Records are small.
	resp, err := s.cli.Get(ctx, Prefix+KindGateways+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list gateway leases: %w", err)
	}
	ttls := map[clientv3.LeaseID]GatewayLease{}
	out := make(map[string]GatewayLease, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		_, seg, err := ParseKey(string(kv.Key))
		if err != nil {
			continue
		}
		id := clientv3.LeaseID(kv.Lease)
		gl, ok := ttls[id]
		if !ok {
			if id == clientv3.NoLease {
				gl = GatewayLease{Expired: true}
			} else {
				ttl, err := s.cli.TimeToLive(ctx, id)
				if err != nil {
					return nil, fmt.Errorf("read gateway lease %x: %w", int64(id), err)
				}
				gl = GatewayLease{TTL: time.Duration(ttl.TTL) * time.Second, Expired: ttl.TTL <= 0}
			}
			ttls[id] = gl
		}
		out[seg[0]+"/"+seg[1]] = gl
	}
	return out, nil
}

// Removed counts the records RemoveCluster deleted, by kind. Bundles
// counts the cluster's trust bundle and the trust states it kept of its
// peers' bundles (trust/<cluster>/...).
type Removed struct {
	Exports, Gateways, Drains, Imports, VIPs, Bundles, Clusters int
}

// Total is the number of records deleted.
func (r Removed) Total() int {
	return r.Exports + r.Gateways + r.Drains + r.Imports + r.VIPs + r.Bundles + r.Clusters
}

// RemoveCluster deletes every record of cluster: its exports first (so
// peers' imports converge at once), then in one transaction its gateway
// records, drain records, imports, clusterset IP reservations, trust bundle,
// trust states of its peers and cluster record. An interrupted removal leaves the cluster record, so
// calling again finishes it; removing what is gone deletes nothing.
// The cluster's own federator must be stopped first, or it re-registers.
func (s *Store) RemoveCluster(ctx context.Context, cluster string) (Removed, error) {
	var r Removed
	if !names.IsDNSLabel(cluster) {
		return r, fmt.Errorf("remove cluster %q: not a DNS label", cluster)
	}
	// Exports first, in their own transaction, so peers' imports converge
	// before the cluster record goes.
	txn, err := s.cli.Txn(ctx).Then(clientv3.OpDelete(ExportsPrefix(cluster), clientv3.WithPrefix())).Commit()
	if err != nil {
		return r, fmt.Errorf("remove cluster %s: delete exports: %w", cluster, err)
	}
	r.Exports = int(txn.Responses[0].GetResponseDeleteRange().GetDeleted())

	counts := []*int{&r.Gateways, &r.Drains, &r.Drains, &r.Imports, &r.VIPs, &r.Bundles, &r.Bundles, &r.Clusters}
	txn, err = s.cli.Txn(ctx).Then(
		clientv3.OpDelete(Prefix+KindGateways+"/"+cluster+"/", clientv3.WithPrefix()),
		clientv3.OpDelete(DrainKey(cluster, "", "")),
		clientv3.OpDelete(DrainKey(cluster, "", "")+"/", clientv3.WithPrefix()),
		clientv3.OpDelete(Prefix+KindImports+"/"+cluster+"/", clientv3.WithPrefix()),
		clientv3.OpDelete(vipPrefix(cluster), clientv3.WithPrefix()),
		clientv3.OpDelete(BundleKey(cluster)),
		clientv3.OpDelete(TrustPrefix(cluster), clientv3.WithPrefix()),
		clientv3.OpDelete(ClusterKey(cluster)), // last: a retry finds the cluster
	).Commit()
	if err != nil {
		return r, fmt.Errorf("remove cluster %s: %w", cluster, err)
	}
	for i, rr := range txn.Responses {
		*counts[i] += int(rr.GetResponseDeleteRange().GetDeleted())
	}
	return r, nil
}

// Liveness is what shows that a cluster is running.
type Liveness struct {
	// Gateways is the number of its gateway records on a live lease.
	Gateways int
	// Leader is true when one of its federator replicas holds (or
	// campaigns for) its election key.
	Leader bool
}

// Live reports whether anything of the cluster runs.
func (l Liveness) Live() bool { return l.Gateways > 0 || l.Leader }

// String describes l for an error message.
func (l Liveness) String() string {
	switch {
	case l.Gateways > 0 && l.Leader:
		return fmt.Sprintf("%d gateway(s) with a live lease and a federator holding its election key", l.Gateways)
	case l.Gateways > 0:
		return fmt.Sprintf("%d gateway(s) with a live lease", l.Gateways)
	case l.Leader:
		return "a federator holding its election key"
	}
	return "nothing running"
}

// Liveness reads whether cluster runs: gateway records on live leases and
// election keys (which live on their replica's lease).
func (s *Store) Liveness(ctx context.Context, cluster string) (Liveness, error) {
	var l Liveness
	resp, err := s.cli.Get(ctx, Prefix+KindGateways+"/"+cluster+"/", clientv3.WithPrefix())
	if err != nil {
		return l, fmt.Errorf("read liveness of %s: %w", cluster, err)
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			continue // a record without a lease is nobody's heartbeat
		}
		ttl, err := s.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
		if err != nil {
			return l, fmt.Errorf("read liveness of %s: lease %x: %w", cluster, kv.Lease, err)
		}
		if ttl.TTL > 0 {
			l.Gateways++
		}
	}
	leaders, err := s.cli.Get(ctx, ElectionPrefix(cluster)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return l, fmt.Errorf("read liveness of %s: %w", cluster, err)
	}
	l.Leader = leaders.Count > 0
	return l, nil
}

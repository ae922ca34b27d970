package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrRangeExhausted is returned when a cluster has no free clusterset IP.
var ErrRangeExhausted = errors.New("store: clusterset IP range exhausted")

// Options configures a Store. The zero value is valid.
type Options struct {
	// Logger receives decode problems. If nil, slog.Default() is used.
	Logger *slog.Logger
	// Registerer receives the store's metrics. If nil, they are not registered.
	Registerer prometheus.Registerer
}

// Store reads and writes Causeway records in etcd.
type Store struct {
	cli     *clientv3.Client
	log     *slog.Logger
	metrics *metrics

	oldLayoutOnce sync.Once // the old-layout warning is logged once

	vipMu sync.Mutex           // serialises this Store's allocations; guards vips
	vips  map[string]*vipCache // by cluster; a hint, etcd decides
}

// vipCache is what this Store last knew of one cluster's reservations, so
// allocating thousands of addresses does not re-read them all each time.
// A failed create-only transaction (someone else took the address)
// invalidates it.
type vipCache struct {
	used  map[netip.Addr]bool
	bySvc map[string]netip.Addr // "ns/name" → address
	next  netip.Addr            // where the search for a free address starts
}

// New returns a Store over an etcd client the caller owns.
func New(cli *clientv3.Client, o Options) *Store {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{cli: cli, log: log, metrics: newMetrics(o.Registerer)}
}

// Client returns the underlying etcd client.
func (s *Store) Client() *clientv3.Client { return s.cli }

func (s *Store) put(ctx context.Context, key string, m proto.Message, opts ...clientv3.OpOption) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	if _, err := s.cli.Put(ctx, key, string(b), opts...); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, key string) error {
	if _, err := s.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// PutCluster writes a cluster's record.
func (s *Store) PutCluster(ctx context.Context, r *causewayv1.ClusterRecord) error {
	return s.put(ctx, ClusterKey(r.GetName()), r)
}

// PutBundle writes a cluster's trust bundle.
func (s *Store) PutBundle(ctx context.Context, b *causewayv1.TrustBundle) error {
	return s.put(ctx, BundleKey(b.GetCluster()), b)
}

// PutImport writes a cluster's import of a service.
func (s *Store) PutImport(ctx context.Context, r *causewayv1.ImportRecord) error {
	return s.put(ctx, ImportKey(r.GetCluster(), r.GetNamespace(), r.GetName()), r)
}

// PutImportAt writes a cluster's import of a service and returns the etcd
// revision of the write.
func (s *Store) PutImportAt(ctx context.Context, r *causewayv1.ImportRecord) (int64, error) {
	key := ImportKey(r.GetCluster(), r.GetNamespace(), r.GetName())
	b, err := Encode(r)
	if err != nil {
		return 0, err
	}
	resp, err := s.cli.Put(ctx, key, string(b))
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

// PutImportsAt writes many imports in transactions of up to 64 and
// returns the revision of the last write.
func (s *Store) PutImportsAt(ctx context.Context, recs []*causewayv1.ImportRecord) (int64, error) {
	var rev int64
	for len(recs) > 0 {
		n := min(len(recs), maxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, r := range recs[:n] {
			b, err := Encode(r)
			if err != nil {
				return 0, err
			}
			ops = append(ops, clientv3.OpPut(ImportKey(r.GetCluster(), r.GetNamespace(), r.GetName()), string(b)))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("put %d imports: %w", n, err)
		}
		rev, recs = resp.Header.Revision, recs[n:]
	}
	return rev, nil
}

// DeleteImportAt removes a cluster's import of a service and returns the
// etcd revision of the delete.
func (s *Store) DeleteImportAt(ctx context.Context, cluster, ns, svc string) (int64, error) {
	key := ImportKey(cluster, ns, svc)
	resp, err := s.cli.Delete(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

// DeleteImport removes a cluster's import of a service.
func (s *Store) DeleteImport(ctx context.Context, cluster, ns, svc string) error {
	return s.delete(ctx, ImportKey(cluster, ns, svc))
}

// PutDrain writes a drain record.
func (s *Store) PutDrain(ctx context.Context, r *causewayv1.DrainRecord) error {
	return s.put(ctx, DrainKey(r.GetCluster(), r.GetNamespace(), r.GetName()), r)
}

// DeleteDrain removes a drain record.
func (s *Store) DeleteDrain(ctx context.Context, cluster, ns, svc string) error {
	return s.delete(ctx, DrainKey(cluster, ns, svc))
}

// PutExport writes an export record. The creation time of an existing
// record is kept (it decides conflicts), so a re-publish never makes an
// export younger; a new record gets r.Created, or now when unset.
func (s *Store) PutExport(ctx context.Context, r *causewayv1.ExportRecord) error {
	key := ExportKeyOf(r.GetCluster(), r.GetNamespace(), r.GetName())
	for attempt := 0; attempt < 8; attempt++ {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("publish export %s: %w", key, err)
		}
		rec := proto.Clone(r).(*causewayv1.ExportRecord)
		cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		if len(resp.Kvs) == 1 {
			kv := resp.Kvs[0]
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
			old := &causewayv1.ExportRecord{}
			if err := decodeInto(kv.Value, old); err == nil && old.GetCreated() != nil {
				rec.Created = old.GetCreated()
			}
		}
		if rec.Created == nil {
			rec.Created = timestamppb.Now()
		}
		b, err := Encode(rec)
		if err != nil {
			return err
		}
		txn, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			return fmt.Errorf("publish export %s: %w", key, err)
		}
		if txn.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("publish export %s: too many concurrent writers", key)
}

// CreateExports writes new export records (created = now where unset) in
// transactions of up to 64 that succeed only if none of the keys exists.
// It returns the records it could not create that way (a key already
// existed); write those with PutExport.
func (s *Store) CreateExports(ctx context.Context, recs []*causewayv1.ExportRecord) ([]*causewayv1.ExportRecord, error) {
	var rest []*causewayv1.ExportRecord
	for len(recs) > 0 {
		n := min(len(recs), maxTxnOps)
		batch := recs[:n]
		recs = recs[n:]
		cmps := make([]clientv3.Cmp, 0, n)
		ops := make([]clientv3.Op, 0, n)
		now := timestamppb.Now()
		for _, r := range batch {
			rec := r
			if rec.GetCreated() == nil {
				rec = proto.Clone(r).(*causewayv1.ExportRecord)
				rec.Created = now
			}
			b, err := Encode(rec)
			if err != nil {
				return nil, err
			}
			key := ExportKeyOf(r.GetCluster(), r.GetNamespace(), r.GetName())
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, string(b)))
		}
		txn, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("publish %d exports: %w", n, err)
		}
		if !txn.Succeeded {
			rest = append(rest, batch...)
		}
	}
	return rest, nil
}

// DeleteExport removes one cluster's export of a service.
func (s *Store) DeleteExport(ctx context.Context, ns, svc, cluster string) error {
	return s.delete(ctx, ExportKeyOf(cluster, ns, svc))
}

// ListExportsOf returns the export records written by one cluster.
func (s *Store) ListExportsOf(ctx context.Context, cluster string) ([]*causewayv1.ExportRecord, error) {
	entries, _, err := s.List(ctx, ExportsPrefix(cluster))
	if err != nil {
		return nil, err
	}
	var out []*causewayv1.ExportRecord
	for _, e := range entries {
		if x := e.GetExport(); x != nil && x.GetCluster() == cluster {
			out = append(out, x)
		}
	}
	return out, nil
}

// RegisterGateway writes a gateway record attached to the session's lease:
// it disappears when the session ends or its lease expires.
func (s *Store) RegisterGateway(ctx context.Context, sess *concurrency.Session, r *causewayv1.GatewayRecord) error {
	return s.put(ctx, GatewayKey(r.GetCluster(), r.GetInstance()), r, clientv3.WithLease(sess.Lease()))
}

// List returns every decodable entry under prefix (a full key prefix,
// Prefix for everything) and the revision of the read.
func (s *Store) List(ctx context.Context, prefix string) ([]*causewayv1.Entry, int64, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make([]*causewayv1.Entry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if e := s.decode(string(kv.Key), kv.Value); e != nil {
			out = append(out, e)
		}
	}
	return out, resp.Header.Revision, nil
}

// decode returns the entry of a key/value, or nil when it is not a catalog
// entry or cannot be decoded (logged and counted).
func (s *Store) decode(key string, value []byte) *causewayv1.Entry {
	e, err := DecodeEntry(key, value)
	if err != nil {
		kind, _, _ := ParseKey(key)
		if kind == "" {
			kind = "unknown"
		}
		s.metrics.decodeErrors.WithLabelValues(kind).Inc()
		if errors.Is(err, ErrOldLayout) {
			s.warnOldLayout(key)
			return nil
		}
		s.log.Warn("skipping etcd value", "key", key, "err", err)
		return nil
	}
	return e
}

// AllocateVIP returns the clusterset IP of ns/svc in cluster, reserving a
// free address of prefix when it has none. Safe under concurrent callers
// (in one or many processes): the reservation is a create-only transaction.
func (s *Store) AllocateVIP(ctx context.Context, cluster, ns, svc string, prefix netip.Prefix) (netip.Addr, error) {
	s.vipMu.Lock()
	defer s.vipMu.Unlock()
	return s.allocateVIPLocked(ctx, cluster, ns, svc, prefix)
}

// maxTxnOps stays under etcd's default --max-txn-ops (128).
const maxTxnOps = 64

// AllocateVIPs is AllocateVIP for many services of one cluster ("ns/name"
// keys), reserving new addresses in transactions of up to 64 at once. A
// batch that loses a race falls back to one-by-one allocation.
func (s *Store) AllocateVIPs(ctx context.Context, cluster string, svcs []string, prefix netip.Prefix) (map[string]netip.Addr, error) {
	s.vipMu.Lock()
	defer s.vipMu.Unlock()
	out := make(map[string]netip.Addr, len(svcs))
	for len(svcs) > 0 {
		n := min(len(svcs), maxTxnOps)
		batch := svcs[:n]
		svcs = svcs[n:]
		c, err := s.vipCacheOf(ctx, cluster)
		if err != nil {
			return nil, fmt.Errorf("allocate vips in %s: %w", cluster, err)
		}
		var (
			cmps []clientv3.Cmp
			ops  []clientv3.Op
			got  = map[string]netip.Addr{}
		)
		for _, k := range batch {
			if addr, ok := c.bySvc[k]; ok {
				out[k] = addr
				continue
			}
			addr, ok := c.nextFree(prefix)
			if !ok {
				break // the one-by-one path re-reads and reports exhaustion
			}
			ns, name, _ := strings.Cut(k, "/")
			b, err := Encode(&causewayv1.VIPAllocation{Namespace: ns, Name: name})
			if err != nil {
				return nil, err
			}
			key := VIPKey(cluster, addr.String())
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, string(b)))
			got[k] = addr
			c.used[addr], c.next = true, addr.Next() // tentatively, for the next pick
		}
		if len(ops) > 0 {
			txn, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
			if err != nil {
				delete(s.vips, cluster)
				return nil, fmt.Errorf("allocate vips in %s: %w", cluster, err)
			}
			if txn.Succeeded {
				for k, addr := range got {
					c.bySvc[k], out[k] = addr, addr
				}
			} else {
				delete(s.vips, cluster)
			}
		}
		for _, k := range batch { // lost races, or the range looked full
			if _, ok := out[k]; ok {
				continue
			}
			ns, name, _ := strings.Cut(k, "/")
			addr, err := s.allocateVIPLocked(ctx, cluster, ns, name, prefix)
			if err != nil {
				return out, err
			}
			out[k] = addr
		}
	}
	return out, nil
}

func (s *Store) allocateVIPLocked(ctx context.Context, cluster, ns, svc string, prefix netip.Prefix) (netip.Addr, error) {
	for attempt := 0; attempt < 64; attempt++ {
		c, err := s.vipCacheOf(ctx, cluster)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("allocate vip for %s/%s in %s: %w", ns, svc, cluster, err)
		}
		if addr, ok := c.bySvc[ns+"/"+svc]; ok {
			return addr, nil
		}
		addr, ok := c.nextFree(prefix)
		if !ok {
			delete(s.vips, cluster) // re-read before declaring the range full
			if c, err = s.vipCacheOf(ctx, cluster); err != nil {
				return netip.Addr{}, fmt.Errorf("allocate vip for %s/%s in %s: %w", ns, svc, cluster, err)
			}
			if addr, ok = c.bySvc[ns+"/"+svc]; ok {
				return addr, nil
			}
			if addr, ok = c.nextFree(prefix); !ok {
				return netip.Addr{}, fmt.Errorf("allocate vip for %s/%s in %s from %s: %w", ns, svc, cluster, prefix, ErrRangeExhausted)
			}
		}
		b, err := Encode(&causewayv1.VIPAllocation{Namespace: ns, Name: svc})
		if err != nil {
			return netip.Addr{}, err
		}
		key := VIPKey(cluster, addr.String())
		txn, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			delete(s.vips, cluster)
			return netip.Addr{}, fmt.Errorf("allocate vip %s for %s/%s: %w", addr, ns, svc, err)
		}
		if txn.Succeeded {
			c.used[addr], c.bySvc[ns+"/"+svc], c.next = true, addr, addr.Next()
			return addr, nil
		}
		// Someone took it first (another process, or the service itself
		// from elsewhere): re-read and try again.
		delete(s.vips, cluster)
	}
	return netip.Addr{}, fmt.Errorf("allocate vip for %s/%s in %s: too much contention", ns, svc, cluster)
}

// vipCacheOf returns the cached reservations of cluster, reading them from
// etcd when there is no cache. Callers hold vipMu.
func (s *Store) vipCacheOf(ctx context.Context, cluster string) (*vipCache, error) {
	if c, ok := s.vips[cluster]; ok {
		return c, nil
	}
	resp, err := s.cli.Get(ctx, vipPrefix(cluster), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	c := &vipCache{used: make(map[netip.Addr]bool, len(resp.Kvs)), bySvc: make(map[string]netip.Addr, len(resp.Kvs))}
	for _, kv := range resp.Kvs {
		addr, err := netip.ParseAddr(string(kv.Key[len(vipPrefix(cluster)):]))
		if err != nil {
			continue
		}
		c.used[addr] = true
		a := &causewayv1.VIPAllocation{}
		if decodeInto(kv.Value, a) == nil {
			k := a.GetNamespace() + "/" + a.GetName()
			// With duplicates (see ReleaseVIP), keep the lowest address.
			if old, ok := c.bySvc[k]; !ok || addr.Less(old) {
				c.bySvc[k] = addr
			}
		}
	}
	if s.vips == nil {
		s.vips = map[string]*vipCache{}
	}
	s.vips[cluster] = c
	return c, nil
}

// nextFree returns a free address of p, searching from the cursor and
// wrapping around once.
func (c *vipCache) nextFree(p netip.Prefix) (netip.Addr, bool) {
	if c.next.IsValid() && p.Contains(c.next) {
		if addr, ok := firstFreeFrom(p, c.next, c.used); ok {
			return addr, true
		}
	}
	return firstFree(p, c.used)
}

// ReleaseVIP frees the clusterset IP of ns/svc in cluster, if it is still
// reserved by that service.
func (s *Store) ReleaseVIP(ctx context.Context, cluster, ns, svc string, addr netip.Addr) error {
	key := VIPKey(cluster, addr.String())
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("release vip %s: %w", addr, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	a := &causewayv1.VIPAllocation{}
	if err := decodeInto(resp.Kvs[0].Value, a); err != nil || a.GetNamespace() != ns || a.GetName() != svc {
		// Another service's, or a reservation this build cannot read (a
		// newer schema may have given it to someone else): leave it.
		return nil
	}
	_, err = s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete(key)).Commit()
	s.vipMu.Lock()
	delete(s.vips, cluster) // re-read at the next allocation
	s.vipMu.Unlock()
	if err != nil {
		return fmt.Errorf("release vip %s: %w", addr, err)
	}
	return nil
}

// firstFree returns the lowest address of p not in used, skipping the
// network and broadcast addresses of IPv4 ranges.
func firstFree(p netip.Prefix, used map[netip.Addr]bool) (netip.Addr, bool) {
	p = p.Masked()
	addr := p.Addr()
	if addr.Is4() && p.Bits() < 31 {
		addr = addr.Next()
	}
	return firstFreeFrom(p, addr, used)
}

// firstFreeFrom is firstFree starting at from (inside p).
func firstFreeFrom(p netip.Prefix, from netip.Addr, used map[netip.Addr]bool) (netip.Addr, bool) {
	p = p.Masked()
	if from.Is4() && p.Bits() < 31 && from == p.Addr() {
		from = from.Next() // network address
	}
	for addr := from; addr.IsValid() && p.Contains(addr); addr = addr.Next() {
		if addr.Is4() && p.Bits() < 31 && !p.Contains(addr.Next()) {
			break // broadcast
		}
		if !used[addr] {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

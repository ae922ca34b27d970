package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrRangeExhausted is returned when a cluster has no free clusterset IP.
var ErrRangeExhausted = errors.New("store: clusterset IP range exhausted")

// ErrVIPNotReserved is returned by PutReservedImportsAt when an import's
// address is not (or no longer) reserved for that import's service.
var ErrVIPNotReserved = errors.New("store: clusterset IP not reserved for the service")

// vipCache is what this Store last knew of one cluster's reservations, so
// allocating thousands of addresses does not re-read them all each time.
// A failed create-only or guarded transaction, and a reservation change
// this Store did not make (seen by Watch), invalidate it.
type vipCache struct {
	rev    int64                 // etcd revision of the read that built it
	used   map[netip.Addr]bool   // reserved, or held by an import (not free)
	bySvc  map[string]netip.Addr // "ns/name" → its reserved address
	modRev map[netip.Addr]int64  // reserved address → the reservation's mod revision
	next   netip.Addr            // where the search for a free address starts
}

// reserve records a reservation of addr for svc made at revision rev.
func (c *vipCache) reserve(addr netip.Addr, svc string, rev int64) {
	c.used[addr], c.bySvc[svc], c.modRev[addr] = true, addr, rev
}

// AllocateVIP returns the clusterset IP of ns/svc in cluster, reserving a
// free address of the ranges when it has none. Safe under concurrent callers
// (in one or many processes): the reservation is a create-only transaction.
func (s *Store) AllocateVIP(ctx context.Context, cluster, ns, svc string, ranges VIPRanges) (netip.Addr, error) {
	s.vipMu.Lock()
	defer s.vipMu.Unlock()
	return s.allocateVIPLocked(ctx, cluster, ns+"/"+svc, netip.Addr{}, nil, ranges)
}

// maxTxnOps stays under etcd's default --max-txn-ops (128).
const maxTxnOps = 64

// AllocateVIPs is AllocateVIP for many services of one cluster ("ns/name"
// keys), reserving new addresses in transactions of up to 64 at once. A
// batch that loses a race falls back to one-by-one allocation.
//
// held is the address each of the cluster's imports carries now
// ("ns/name" → address; nil for none). Those addresses are never given to
// another service, even when their reservation is gone (someone deleted
// it, or a forced removal did): a service whose own reservation is gone
// gets its held address back when it is still free, so its clients keep
// their address.
func (s *Store) AllocateVIPs(ctx context.Context, cluster string, svcs []string, ranges VIPRanges, held map[string]netip.Addr) (map[string]netip.Addr, error) {
	s.vipMu.Lock()
	defer s.vipMu.Unlock()
	out := make(map[string]netip.Addr, len(svcs))
	heldBy := make(map[netip.Addr]string, len(held))
	for k, a := range held {
		heldBy[a] = k
	}
	if c, ok := s.vips[cluster]; ok {
		c.markHeld(heldBy) // a cache built before these imports existed
	}
	for len(svcs) > 0 {
		n := min(len(svcs), maxTxnOps)
		batch := svcs[:n]
		svcs = svcs[n:]
		c, err := s.vipCacheOf(ctx, cluster, heldBy)
		if err != nil {
			return nil, fmt.Errorf("allocate vips in %s: %w", cluster, err)
		}
		if err := s.reserveBatchLocked(ctx, cluster, c, batch, ranges, held, out); err != nil {
			return nil, err
		}
		for _, k := range batch { // lost races, held addresses, or the range looked full
			if _, ok := out[k]; ok {
				continue
			}
			addr, err := s.allocateVIPLocked(ctx, cluster, k, held[k], heldBy, ranges)
			if err != nil {
				return out, err
			}
			out[k] = addr
		}
	}
	return out, nil
}

// reserveBatchLocked answers the services of batch that hold a
// reservation from c and reserves new addresses for the others that have
// no held address, in one create-only transaction; it sets out for each
// service it settled.
func (s *Store) reserveBatchLocked(ctx context.Context, cluster string, c *vipCache, batch []string, ranges VIPRanges, held map[string]netip.Addr, out map[string]netip.Addr) error {
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
		if held[k].IsValid() {
			continue // the one-by-one path tries to get it back first
		}
		addr, ok := c.nextFree(ranges)
		if !ok {
			break // the one-by-one path re-reads and reports exhaustion
		}
		b, err := encodeAllocation(k)
		if err != nil {
			return err
		}
		key := VIPKey(cluster, addr.String())
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		ops = append(ops, clientv3.OpPut(key, string(b)))
		got[k] = addr
		c.used[addr], c.next = true, addr.Next() // tentatively, for the next pick
	}
	if len(ops) == 0 {
		return nil
	}
	txn, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		delete(s.vips, cluster)
		return fmt.Errorf("allocate vips in %s: %w", cluster, err)
	}
	if !txn.Succeeded {
		delete(s.vips, cluster)
		return nil
	}
	for k, addr := range got {
		c.reserve(addr, k, txn.Header.Revision)
		out[k] = addr
	}
	return nil
}

// encodeAllocation is the reservation value of service "ns/name".
func encodeAllocation(svc string) ([]byte, error) {
	ns, name, _ := strings.Cut(svc, "/")
	return Encode(&causewayv1.VIPAllocation{Namespace: ns, Name: name})
}

// allocateVIPLocked returns svc's reserved address, reserving prefer (when
// valid, inside the ranges, unreserved and held by no other service's import;
// heldBy maps held addresses to their service) or else the next free
// address.
func (s *Store) allocateVIPLocked(ctx context.Context, cluster, svc string, prefer netip.Addr, heldBy map[netip.Addr]string, ranges VIPRanges) (netip.Addr, error) {
	for attempt := 0; attempt < 64; attempt++ {
		c, err := s.vipCacheOf(ctx, cluster, heldBy)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("allocate vip for %s in %s: %w", svc, cluster, err)
		}
		if addr, ok := c.bySvc[svc]; ok {
			return addr, nil
		}
		addr, ok := netip.Addr{}, false
		if owner, held := heldBy[prefer]; prefer.IsValid() && ranges.Contains(prefer) && !c.reserved(prefer) && (!held || owner == svc) {
			addr, ok = prefer, true
		} else if addr, ok = c.nextFree(ranges); !ok {
			delete(s.vips, cluster) // re-read before declaring the range full
			if c, err = s.vipCacheOf(ctx, cluster, heldBy); err != nil {
				return netip.Addr{}, fmt.Errorf("allocate vip for %s in %s: %w", svc, cluster, err)
			}
			if addr, ok = c.bySvc[svc]; ok {
				return addr, nil
			}
			if addr, ok = c.nextFree(ranges); !ok {
				return netip.Addr{}, fmt.Errorf("allocate vip for %s in %s from %s: %w", svc, cluster, ranges, ErrRangeExhausted)
			}
		}
		b, err := encodeAllocation(svc)
		if err != nil {
			return netip.Addr{}, err
		}
		key := VIPKey(cluster, addr.String())
		txn, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			delete(s.vips, cluster)
			return netip.Addr{}, fmt.Errorf("allocate vip %s for %s: %w", addr, svc, err)
		}
		if txn.Succeeded {
			c.reserve(addr, svc, txn.Header.Revision)
			if addr != prefer {
				c.next = addr.Next()
			}
			return addr, nil
		}
		// Someone took it first (another process, or the service itself
		// from elsewhere): re-read and try again.
		delete(s.vips, cluster)
	}
	return netip.Addr{}, fmt.Errorf("allocate vip for %s in %s: too much contention", svc, cluster)
}

// reserved reports whether addr has a reservation (of any service).
func (c *vipCache) reserved(addr netip.Addr) bool {
	_, ok := c.modRev[addr]
	return ok
}

// vipCacheOf returns the cached reservations of cluster, reading them from
// etcd when there is no cache. Addresses held by imports (heldBy's keys)
// are marked used too. Callers hold vipMu.
func (s *Store) vipCacheOf(ctx context.Context, cluster string, heldBy map[netip.Addr]string) (*vipCache, error) {
	if c, ok := s.vips[cluster]; ok {
		return c, nil
	}
	c, err := s.readVIPs(ctx, cluster)
	if err != nil {
		return nil, err
	}
	c.markHeld(heldBy)
	if s.vips == nil {
		s.vips = map[string]*vipCache{}
	}
	s.vips[cluster] = c
	return c, nil
}

// markHeld marks the addresses held by imports as used.
func (c *vipCache) markHeld(heldBy map[netip.Addr]string) {
	for a := range heldBy {
		if a.IsValid() {
			c.used[a] = true
		}
	}
}

// readVIPs reads cluster's reservations.
func (s *Store) readVIPs(ctx context.Context, cluster string) (*vipCache, error) {
	resp, err := s.cli.Get(ctx, vipPrefix(cluster), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	c := &vipCache{
		rev:    resp.Header.Revision,
		used:   make(map[netip.Addr]bool, len(resp.Kvs)),
		bySvc:  make(map[string]netip.Addr, len(resp.Kvs)),
		modRev: make(map[netip.Addr]int64, len(resp.Kvs)),
	}
	for _, kv := range resp.Kvs {
		addr, err := netip.ParseAddr(string(kv.Key[len(vipPrefix(cluster)):]))
		if err != nil {
			continue
		}
		c.used[addr], c.modRev[addr] = true, kv.ModRevision
		a := &causewayv1.VIPAllocation{}
		if decodeInto(kv.Value, a) != nil {
			continue // used, but nobody's: no import may carry it
		}
		k := a.GetNamespace() + "/" + a.GetName()
		// With duplicates (see ReleaseVIP), keep the lowest address.
		if old, ok := c.bySvc[k]; !ok || addr.Less(old) {
			c.bySvc[k] = addr
		}
	}
	return c, nil
}

// noteVIPEvent invalidates the cached reservations of a cluster when a
// watch shows a reservation change this Store did not make (a peer
// replica's, an operator's, a forced removal's), so the next allocation
// re-reads them instead of handing out addresses from a stale cache.
func (s *Store) noteVIPEvent(key string, ev *clientv3.Event) {
	_, seg, err := ParseKey(key)
	if err != nil {
		return
	}
	cluster := seg[0]
	s.vipMu.Lock()
	defer s.vipMu.Unlock()
	c, ok := s.vips[cluster]
	if !ok {
		return
	}
	rev := ev.Kv.ModRevision
	if rev <= c.rev {
		return // the cache was read after this change
	}
	if addr, err := netip.ParseAddr(seg[1]); err == nil && ev.Type == clientv3.EventTypePut && c.modRev[addr] == rev {
		return // this Store's own reservation
	}
	delete(s.vips, cluster)
}

// nextFree returns a free address of p, searching from the cursor and
// wrapping around once.
func (c *vipCache) nextFree(ranges VIPRanges) (netip.Addr, bool) {
	for _, p := range ranges {
		if c.next.IsValid() && p.Contains(c.next) {
			if addr, ok := firstFreeFrom(p, c.next, c.used); ok {
				return addr, true
			}
		}
	}
	for _, p := range ranges {
		if addr, ok := firstFree(p, c.used); ok {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// VIPRanges are the CIDRs a cluster's clusterset IPs come from, in the
// order they are used: an address is taken from the first range with one
// free.
type VIPRanges []netip.Prefix

// Contains reports whether addr is in one of the ranges.
func (r VIPRanges) Contains(addr netip.Addr) bool {
	for _, p := range r {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// String lists the ranges, comma-separated.
func (r VIPRanges) String() string {
	s := make([]string, len(r))
	for i, p := range r {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// PutReservedImportsAt is PutImportsAt for imports whose addresses are
// clusterset IPs this Store reserved: each transaction (several are in
// flight at once) also requires every address's reservation to be the one
// the Store holds for that import's service, unchanged. Otherwise nothing
// of that transaction is written, the rest may or may not be, the
// reservation cache is dropped and the error wraps ErrVIPNotReserved: an
// import is never written with an address reserved by another service, or
// by none.
func (s *Store) PutReservedImportsAt(ctx context.Context, cluster string, recs []*causewayv1.ImportRecord) (int64, error) {
	var batches []txnBatch
	for i := 0; i < len(recs); i += maxTxnOps {
		cmps, ops, err := s.reservedImportOps(cluster, recs[i:min(i+maxTxnOps, len(recs))])
		if err != nil {
			return 0, err
		}
		batches = append(batches, txnBatch{cmps: cmps, ops: ops})
	}
	rev, failed, err := s.commitBatches(ctx, batches)
	if err != nil {
		return 0, fmt.Errorf("put %d imports of %s: %w", len(recs), cluster, err)
	}
	if failed >= 0 {
		s.vipMu.Lock()
		delete(s.vips, cluster)
		s.vipMu.Unlock()
		return 0, fmt.Errorf("put %d imports of %s: a reservation changed: %w", len(batches[failed].ops), cluster, ErrVIPNotReserved)
	}
	return rev, nil
}

// reservedImportOps builds the guards and puts of one batch of imports.
func (s *Store) reservedImportOps(cluster string, recs []*causewayv1.ImportRecord) ([]clientv3.Cmp, []clientv3.Op, error) {
	s.vipMu.Lock()
	defer s.vipMu.Unlock()
	c := s.vips[cluster]
	var cmps []clientv3.Cmp
	ops := make([]clientv3.Op, 0, len(recs))
	for _, r := range recs {
		if r.GetCluster() != cluster {
			return nil, nil, fmt.Errorf("put import of %s as %s: %w", r.GetCluster(), cluster, ErrKeyMismatch)
		}
		svc := r.GetNamespace() + "/" + r.GetName()
		for _, ip := range r.GetIps() {
			addr, err := netip.ParseAddr(ip)
			if err != nil || c == nil || c.bySvc[svc] != addr {
				return nil, nil, fmt.Errorf("import %s in %s with %s: %w", svc, cluster, ip, ErrVIPNotReserved)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(VIPKey(cluster, ip)), "=", c.modRev[addr]))
		}
		b, err := Encode(r)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, clientv3.OpPut(ImportKey(cluster, r.GetNamespace(), r.GetName()), string(b)))
	}
	return cmps, ops, nil
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

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrGatewayHeld is returned by ClaimGateway when a live record of the
// instance belongs to another announcer key.
var ErrGatewayHeld = errors.New("store: gateway instance announced by another key")

// Get returns the entry at a full key. present is false when the key does
// not exist; e is nil with present true when its value does not decode,
// has an unknown schema version or names another cluster (counted and
// logged), or is a gateway record without a lease.
func (s *Store) Get(ctx context.Context, key string) (e *causewayv1.Entry, present bool, err error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	kv := resp.Kvs[0]
	if kind, _, _ := ParseKey(key); kind == KindGateways && kv.Lease == 0 {
		return nil, true, nil
	}
	return s.decode(key, kv.Value), true, nil
}

// GatewayClaim is how ClaimGateway writes a gateway record.
type GatewayClaim int

const (
	// ClaimNew is a new announcement: it replaces a live record only when
	// that record carries the same announcer key (the same gateway
	// announcing again), carries none (written before the field existed),
	// or is not a valid live record (no lease, undecodable).
	ClaimNew GatewayClaim = iota
	// ClaimReassert is the holder of the instance putting its record back:
	// it replaces whatever the key holds, unless a live record of the same
	// announcer key on another lease is there (the same gateway's newer
	// announcement).
	ClaimReassert
)

// ClaimGateway writes a gateway record on lease, guarded by a transaction
// on the key's current state so that one gateway's credential cannot
// replace another live instance's record (ErrGatewayHeld). It returns the
// revision of the write; written is false when mode is ClaimReassert and
// the key already holds a live record of the same key (nothing to do).
func (s *Store) ClaimGateway(ctx context.Context, lease clientv3.LeaseID, r *causewayv1.GatewayRecord, mode GatewayClaim) (rev int64, written bool, err error) {
	key := GatewayKey(r.GetCluster(), r.GetInstance())
	b, err := Encode(r)
	if err != nil {
		return 0, false, err
	}
	for attempt := 0; attempt < 8; attempt++ {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return 0, false, fmt.Errorf("announce gateway %s: %w", key, err)
		}
		cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		if len(resp.Kvs) == 1 {
			kv := resp.Kvs[0]
			if clientv3.LeaseID(kv.Lease) == lease && bytes.Equal(kv.Value, b) {
				return kv.ModRevision, false, nil // already ours
			}
			switch held, same := holder(kv, r.GetAnnouncerKeySha256()); {
			case held && !same && mode == ClaimNew:
				return 0, false, fmt.Errorf("announce gateway %s: %w", key, ErrGatewayHeld)
			case held && same && mode == ClaimReassert && clientv3.LeaseID(kv.Lease) != lease:
				// The same gateway's newer announcement (another session):
				// not ours to replace. On our own lease, anything but our
				// value is replaced.
				return kv.ModRevision, false, nil
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
		}
		txn, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(b), clientv3.WithLease(lease))).Commit()
		if err != nil {
			return 0, false, fmt.Errorf("announce gateway %s: %w", key, err)
		}
		if txn.Succeeded {
			return txn.Header.Revision, true, nil
		}
	}
	return 0, false, fmt.Errorf("announce gateway %s: too many concurrent writers", key)
}

// holder reports whether kv is a live gateway record with an announcer
// key (held), and whether that key is announcer (same).
func holder(kv *mvccpb.KeyValue, announcer []byte) (held, same bool) {
	if kv.GetLease() == 0 {
		return false, false
	}
	old := &causewayv1.GatewayRecord{}
	if decodeInto(kv.GetValue(), old) != nil || len(old.GetAnnouncerKeySha256()) == 0 {
		return false, false
	}
	return true, bytes.Equal(old.GetAnnouncerKeySha256(), announcer)
}

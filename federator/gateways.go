package federator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/federator/store"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// announceGateway keeps a gateway record of this cluster in etcd for the
// gateway whose leaf public key hashes to announcer (Catalog.AnnounceGateway),
// attached to a lease of ttl (default 5s when zero), until ctx ends; then
// it revokes the lease so peers stop using the gateway at once. A lost
// lease (etcd unreachable past the TTL) is re-created when etcd comes
// back. It calls announced with the lease each time the record is written. It fails with store.ErrGatewayHeld when a live record
// of the instance belongs to another key. While the announcement lasts,
// the record is put back whenever its key is deleted or overwritten.
func (f *Federator) announceGateway(ctx context.Context, instance string, addrs []string, announcer []byte, ttl time.Duration, announced func(clientv3.LeaseID) error) error {
	if ttl == 0 {
		ttl = 5 * time.Second
	}
	rec := &causewayv1.GatewayRecord{Cluster: f.cfg.Cluster, Instance: instance, Addresses: addrs, AnnouncerKeySha256: announcer}
	// stale is the lease of a session this announcement lost (its
	// keep-alive failed, e.g. across an etcd restart): the record may still
	// be on it, so it is revoked only once the record is on the new lease,
	// and peers see the instance updated, never gone.
	var stale clientv3.LeaseID
	for ctx.Err() == nil {
		lost := false
		sess, err := concurrency.NewSession(f.store.Client(), concurrency.WithTTL(int(ttl.Seconds())), concurrency.WithContext(ctx))
		if err == nil {
			err = f.holdGateway(ctx, sess, rec, announced, func() {
				if stale != 0 {
					f.revokeLease(stale)
					stale = 0
				}
			})
			lost = err == nil && ctx.Err() == nil
			if lost {
				if stale != 0 {
					f.revokeLease(stale)
				}
				stale = sess.Lease()
				sess.Orphan() // Close would revoke the lease, and the record with it
			} else {
				revoked := f.revokeLease(sess.Lease())
				if ctx.Err() != nil {
					f.log.Info("gateway announcement withdrawn", "instance", instance, "revoked", revoked)
				}
				_ = sess.Close()
			}
		}
		if errors.Is(err, store.ErrGatewayHeld) {
			f.log.Warn("gateway announcement refused: the instance is announced by another gateway key", "instance", instance)
			return err
		}
		if err != nil && ctx.Err() == nil {
			f.log.Warn("announce gateway failed", "instance", instance, "err", err)
		}
		if lost {
			continue // claim again at once, on a new lease
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if stale != 0 {
		f.revokeLease(stale)
	}
	return nil
}

// revokeLease revokes lease (deleting the records on it), waiting at most
// a second; it reports whether etcd confirmed.
func (f *Federator) revokeLease(lease clientv3.LeaseID) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := f.store.Client().Revoke(ctx, lease)
	return err == nil
}

// holdGateway claims the instance on sess's lease (then calls claimed) and keeps the record in
// place until ctx ends or the session is lost: a watch on the key puts it
// back (store.ClaimReassert) when anything else deletes or replaces it.
func (f *Federator) holdGateway(ctx context.Context, sess *concurrency.Session, rec *causewayv1.GatewayRecord, announced func(clientv3.LeaseID) error, claimed func()) error {
	rev, _, err := f.store.ClaimGateway(ctx, sess.Lease(), rec, store.ClaimNew)
	if err != nil {
		return err
	}
	claimed()
	f.log.Info("gateway announced", "instance", rec.GetInstance(), "addresses", rec.GetAddresses())
	if announced != nil {
		if err := announced(sess.Lease()); err != nil {
			return err
		}
	}
	for {
		err := f.watchGateway(ctx, sess, rec, &rev)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-sess.Done():
			f.log.Warn("gateway lease lost; re-announcing", "instance", rec.GetInstance())
			return nil
		default:
		}
		f.log.Warn("watch of the gateway record failed; watching again", "instance", rec.GetInstance(), "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-sess.Done():
		case <-t.C:
		}
		t.Stop()
		if wrote, err := f.reassertGateway(ctx, sess, rec); err == nil && wrote > 0 {
			rev = wrote
		}
	}
}

// watchGateway watches rec's key after *rev and puts the record back
// whenever another write or a delete touches it. It returns nil when ctx
// ends or the session is lost, or the watch's error.
func (f *Federator) watchGateway(ctx context.Context, sess *concurrency.Session, rec *causewayv1.GatewayRecord, rev *int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	key := store.GatewayKey(rec.GetCluster(), rec.GetInstance())
	ours, err := store.Encode(rec)
	if err != nil {
		return err
	}
	wch := f.store.Client().Watch(wctx, key, clientv3.WithRev(*rev+1))
	safety := time.NewTicker(f.cfg.healInterval())
	defer safety.Stop()
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case <-sess.Done():
			return nil
		case <-safety.C: // in case the watch missed something
			if _, err := f.reassertGateway(ctx, sess, rec); err != nil {
				return err
			}
			continue
		case resp, ok = <-wch:
		}
		switch {
		case !ok:
			return errors.New("watch channel closed")
		case resp.CompactRevision != 0:
			*rev = resp.CompactRevision - 1
			return fmt.Errorf("watch %s compacted at %d", key, resp.CompactRevision)
		case resp.Err() != nil:
			return resp.Err()
		case len(resp.Events) == 0:
			continue
		}
		*rev = resp.Header.Revision
		last := resp.Events[len(resp.Events)-1]
		if last.Type == clientv3.EventTypePut && clientv3.LeaseID(last.Kv.Lease) == sess.Lease() && bytes.Equal(last.Kv.Value, ours) {
			continue // our own write (another value on our lease is not)
		}
		wrote, err := f.reassertGateway(ctx, sess, rec)
		if err != nil {
			return err
		}
		if wrote > 0 {
			*rev = wrote
		}
	}
}

// reassertGateway puts rec back on sess's lease after its key changed; it
// returns the revision of the write, or 0 when nothing was written.
func (f *Federator) reassertGateway(ctx context.Context, sess *concurrency.Session, rec *causewayv1.GatewayRecord) (int64, error) {
	rev, written, err := f.store.ClaimGateway(ctx, sess.Lease(), rec, store.ClaimReassert)
	if err != nil {
		return 0, fmt.Errorf("re-assert gateway %s: %w", rec.GetInstance(), err)
	}
	if !written {
		return 0, nil
	}
	f.metrics.healed.WithLabelValues("gateway").Inc()
	f.log.Warn("gateway record was deleted or replaced in etcd; put back", "instance", rec.GetInstance())
	return rev, nil
}

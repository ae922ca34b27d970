package federator

import (
	"context"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// AnnounceGateway keeps a gateway record of this cluster in etcd, attached
// to a lease of ttl (default 5s when zero), until ctx ends; then it revokes
// the lease so peers stop using the gateway at once. A lost lease (etcd
// unreachable past the TTL) is re-created when etcd comes back.
func (f *Federator) AnnounceGateway(ctx context.Context, instance string, addrs []string, ttl time.Duration) error {
	return f.announceGateway(ctx, instance, addrs, ttl, nil)
}

// announceGateway is AnnounceGateway calling announced with the lease
// each time the record is written.
func (f *Federator) announceGateway(ctx context.Context, instance string, addrs []string, ttl time.Duration, announced func(clientv3.LeaseID) error) error {
	if ttl == 0 {
		ttl = 5 * time.Second
	}
	rec := &causewayv1.GatewayRecord{Cluster: f.cfg.Cluster, Instance: instance, Addresses: addrs}
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(f.store.Client(), concurrency.WithTTL(int(ttl.Seconds())), concurrency.WithContext(ctx))
		if err == nil {
			err = f.store.RegisterGateway(ctx, sess, rec)
			if err == nil {
				f.log.Info("gateway announced", "instance", instance, "addresses", addrs)
				if announced != nil {
					err = announced(sess.Lease())
				}
			}
			if err == nil {
				select {
				case <-ctx.Done():
				case <-sess.Done():
					f.log.Warn("gateway lease lost; re-announcing", "instance", instance)
				}
			}
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, rerr := f.store.Client().Revoke(rctx, sess.Lease())
			cancel()
			if ctx.Err() != nil {
				f.log.Info("gateway announcement withdrawn", "instance", instance, "revoked", rerr == nil)
			}
			_ = sess.Close()
		}
		if err != nil && ctx.Err() == nil {
			f.log.Warn("announce gateway failed", "instance", instance, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("announce gateway %s: %w", instance, ctx.Err())
}

package federator

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/retry"
)

// publishBundle writes the cluster's trust bundle: with a CA set, signed
// by its signing CA and chained to the bundle this process published last
// (at start, to the genuine part of what etcd holds, see
// certs.TrimBundleHistory), so peers can verify the change.
func (f *Federator) publishBundle(ctx context.Context) error {
	rec, err := f.nextBundle(ctx)
	if err != nil {
		return fmt.Errorf("publish trust bundle of %s: %w", f.cfg.Cluster, err)
	}
	if err := f.store.PutBundle(ctx, rec); err != nil {
		return fmt.Errorf("publish trust bundle of %s: %w", f.cfg.Cluster, err)
	}
	f.bundleMu.Lock()
	f.lastBundle = rec
	f.bundleMu.Unlock()
	f.trust.setOwn(rec)
	f.republishTrust()
	return nil
}

// nextBundle is the bundle record to publish now.
func (f *Federator) nextBundle(ctx context.Context) (*causewayv1.TrustBundle, error) {
	seq := uint64(time.Now().UnixNano())
	if f.cfg.CAs == nil {
		return &causewayv1.TrustBundle{Cluster: f.cfg.Cluster, TrustDomain: f.cfg.TrustDomain,
			X509Authorities: f.cfg.Authorities, Sequence: seq}, nil
	}
	signing, err := f.cfg.CAs.SigningCA()
	if err != nil {
		return nil, err
	}
	authorities := f.cfg.CAs.Authorities()
	f.bundleMu.Lock()
	prev := f.lastBundle
	f.bundleMu.Unlock()
	if prev == nil {
		stored, err := f.store.GetBundle(ctx, f.cfg.Cluster)
		if err != nil {
			return nil, err
		}
		prev = certs.TrimBundleHistory(stored, authorities)
	} else {
		seq = max(seq, prev.GetSequence()+1)
	}
	return certs.NextSignedBundle(prev, f.cfg.Cluster, f.cfg.TrustDomain, signing, authorities, seq)
}

// restoreTrust loads this cluster's stored trust in its peers' bundles,
// retrying while etcd fails (it answered register just before), until ctx
// ends.
func (f *Federator) restoreTrust(ctx context.Context) {
	var own []*x509.Certificate
	if f.cfg.CAs != nil {
		own = f.cfg.CAs.Authorities()
	}
	var backoff retry.Backoff
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, etcdAttemptTimeout)
		states, err := f.store.ListTrust(actx, f.cfg.Cluster)
		cancel()
		if err == nil {
			f.trust.restore(states, own)
			return
		}
		f.log.Warn("cannot read the stored trust in peers; retrying", "err", err)
		backoff.Wait(ctx)
	}
}

// runBundle republishes the trust bundle every time the CA set changes,
// retrying with back-off while etcd fails, until ctx ends.
func (f *Federator) runBundle(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		changed = f.cfg.CAs.Changed()
		f.trust.markDirty(nil) // re-sign the trust states with the current CA
		var backoff retry.Backoff
		for {
			err := f.publishBundle(ctx)
			if err == nil {
				f.log.Info("trust bundle republished", "authorities", len(f.cfg.CAs.Authorities()))
				break
			}
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("republish trust bundle failed; retrying", "err", err, "in", backoff.Peek())
			if !backoff.Wait(ctx) {
				return
			}
		}
	}
}

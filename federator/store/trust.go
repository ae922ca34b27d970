package store

import (
	"context"
	"fmt"
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// GetBundle reads a cluster's published trust bundle as etcd holds it;
// nil when there is none or it does not decode (a reader must not trust it
// anyway: see certs.TrimBundleHistory).
func (s *Store) GetBundle(ctx context.Context, cluster string) (*causewayv1.TrustBundle, error) {
	resp, err := s.cli.Get(ctx, BundleKey(cluster))
	if err != nil {
		return nil, fmt.Errorf("get trust bundle of %s: %w", cluster, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	e, err := DecodeEntry(BundleKey(cluster), resp.Kvs[0].Value)
	if err != nil {
		s.log.Warn("ignoring published trust bundle", "cluster", cluster, "err", err)
		return nil, nil
	}
	return e.GetBundle(), nil
}

// PutTrust writes a verifier's trust state for a peer (already signed).
func (s *Store) PutTrust(ctx context.Context, st *causewayv1.TrustState) error {
	c := proto.Clone(st).(*causewayv1.TrustState)
	c.SchemaVersion = SchemaVersion
	b, err := proto.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode trust state %s/%s: %w", st.GetVerifier(), st.GetPeer(), err)
	}
	if _, err := s.cli.Put(ctx, TrustKey(st.GetVerifier(), st.GetPeer()), string(b)); err != nil {
		return fmt.Errorf("put trust state %s/%s: %w", st.GetVerifier(), st.GetPeer(), err)
	}
	return nil
}

// ListTrust reads verifier's trust states keyed by peer. Values that do
// not decode are skipped (logged); the caller verifies signatures.
func (s *Store) ListTrust(ctx context.Context, verifier string) (map[string]*causewayv1.TrustState, error) {
	resp, err := s.cli.Get(ctx, TrustPrefix(verifier), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list trust states of %s: %w", verifier, err)
	}
	out := make(map[string]*causewayv1.TrustState, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		peer := strings.TrimPrefix(string(kv.Key), TrustPrefix(verifier))
		st := &causewayv1.TrustState{}
		if err := decodeInto(kv.Value, st); err != nil {
			s.log.Warn("skipping trust state", "key", string(kv.Key), "err", err)
			continue
		}
		out[peer] = st
	}
	return out, nil
}

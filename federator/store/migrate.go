package store

import (
	"context"
	"fmt"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Migrated counts what MigrateExportKeys did.
type Migrated struct {
	// Moved: old-layout records copied to their new key and deleted.
	Moved int `json:"moved"`
	// Dropped: old-layout records deleted because the new key already
	// held a record (the cluster's federator had published it again).
	Dropped int `json:"dropped"`
	// Skipped: keys under exports/ that are neither layout (undecodable,
	// or naming a cluster that is in neither place); left alone.
	Skipped int `json:"skipped"`
}

// MigrateExportKeys moves every export record at a key of the old layout
// (exports/<ns>/<svc>/<cluster>) to its cluster-first key
// (exports/<cluster>/<ns>/<svc>), keeping the value (and so the creation
// time) as it is. Each move is one transaction that succeeds only if the
// old key is unchanged and the new one absent; when the new key exists the
// old one is just deleted. Running it again does nothing. It needs a client
// allowed to write every cluster's exports (the clusterset admin).
func MigrateExportKeys(ctx context.Context, cli *clientv3.Client) (Migrated, error) {
	var m Migrated
	resp, err := cli.Get(ctx, Prefix+KindExports+"/", clientv3.WithPrefix())
	if err != nil {
		return m, fmt.Errorf("migrate export keys: list: %w", err)
	}
	for _, kv := range resp.Kvs {
		oldKey := string(kv.Key)
		kind, seg, err := ParseKey(oldKey)
		if err != nil || kind != KindExports {
			m.Skipped++
			continue
		}
		r := &causewayv1.ExportRecord{}
		if err := decodeInto(kv.Value, r); err != nil || r.GetCluster() != seg[2] || seg[0] == seg[2] {
			// Undecodable, or already cluster-first (seg[0] is the
			// cluster), or naming no cluster of its key.
			if err != nil || r.GetCluster() != seg[0] {
				m.Skipped++
			}
			continue
		}
		newKey := ExportKeyOf(seg[2], seg[0], seg[1])
		unchanged := clientv3.Compare(clientv3.ModRevision(oldKey), "=", kv.ModRevision)
		txn, err := cli.Txn(ctx).
			If(unchanged, clientv3.Compare(clientv3.CreateRevision(newKey), "=", 0)).
			Then(clientv3.OpPut(newKey, string(kv.Value)), clientv3.OpDelete(oldKey)).Commit()
		if err != nil {
			return m, fmt.Errorf("migrate export key %s: %w", oldKey, err)
		}
		if txn.Succeeded {
			m.Moved++
			continue
		}
		txn, err = cli.Txn(ctx).If(unchanged).Then(clientv3.OpDelete(oldKey)).Commit()
		if err != nil {
			return m, fmt.Errorf("migrate export key %s: %w", oldKey, err)
		}
		if txn.Succeeded {
			m.Dropped++
		}
	}
	return m, nil
}

// warnOldLayout logs, once per Store, that export records sit at keys of
// the old layout: a federation of the old layout has every export there.
func (s *Store) warnOldLayout(key string) {
	s.oldLayoutOnce.Do(func() {
		s.log.Warn("ignoring export records at keys of the old layout (exports/<ns>/<svc>/<cluster>); "+
			"move them with `causeway etcd migrate` run with clusterset-admin credentials", "key", key)
	})
}

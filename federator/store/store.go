package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

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

// PutImportsAt writes many imports in transactions of up to 64, several
// in flight at once, and returns the revision of the last write.
func (s *Store) PutImportsAt(ctx context.Context, recs []*causewayv1.ImportRecord) (int64, error) {
	var batches []txnBatch
	for i := 0; i < len(recs); i += maxTxnOps {
		ops := make([]clientv3.Op, 0, maxTxnOps)
		for _, r := range recs[i:min(i+maxTxnOps, len(recs))] {
			b, err := Encode(r)
			if err != nil {
				return 0, err
			}
			ops = append(ops, clientv3.OpPut(ImportKey(r.GetCluster(), r.GetNamespace(), r.GetName()), string(b)))
		}
		batches = append(batches, txnBatch{ops: ops})
	}
	rev, _, err := s.commitBatches(ctx, batches) // no comparisons: none fails
	if err != nil {
		return 0, fmt.Errorf("put %d imports: %w", len(recs), err)
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
// it disappears when the session ends or its lease expires. It is a plain
// put, for tests and tools; federators announce with ClaimGateway, which
// binds the record to its announcer.
func (s *Store) RegisterGateway(ctx context.Context, sess *concurrency.Session, r *causewayv1.GatewayRecord) error {
	return s.put(ctx, GatewayKey(r.GetCluster(), r.GetInstance()), r, clientv3.WithLease(sess.Lease()))
}

// List returns every decodable entry under prefix (a full key prefix,
// Prefix for everything) and the revision of the read. Gateway records
// without a lease are left out (see Change.Deleted).
func (s *Store) List(ctx context.Context, prefix string) ([]*causewayv1.Entry, int64, error) {
	l, err := s.ListAll(ctx, prefix)
	return l.Entries, l.Revision, err
}

// Listing is the result of ListAll.
type Listing struct {
	// Entries are the decodable catalog entries.
	Entries []*causewayv1.Entry
	// Undecodable are the full keys of catalog entries whose value does
	// not decode or has an unknown schema version; a reader that knew a
	// good value of one keeps it.
	Undecodable []string
	// Revision is the etcd revision of the read.
	Revision int64
}

// ListAll is List that also reports the keys whose values do not decode.
func (s *Store) ListAll(ctx context.Context, prefix string) (Listing, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return Listing{}, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := Listing{Entries: make([]*causewayv1.Entry, 0, len(resp.Kvs)), Revision: resp.Header.Revision}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		kind, _, err := ParseKey(key)
		switch {
		case err != nil:
			s.decode(key, kv.Value) // counted and logged
			continue
		case kind == KindVIPs || kind == KindLeaders:
			continue
		case kind == KindGateways && kv.Lease == 0:
			s.log.Warn("ignoring a gateway record without a lease (not written by a federator)", "key", key)
			continue
		}
		if e := s.decode(key, kv.Value); e != nil {
			out.Entries = append(out.Entries, e)
		} else {
			out.Undecodable = append(out.Undecodable, key)
		}
	}
	return out, nil
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

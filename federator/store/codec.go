package store

import (
	"errors"
	"fmt"
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"google.golang.org/protobuf/proto"
)

// SchemaVersion is the record version this build reads and writes.
const SchemaVersion = 1

// Sentinel errors of decoding.
var (
	ErrUnknownVersion = errors.New("store: unknown schema version")
	ErrUndecodable    = errors.New("store: undecodable value")
	// ErrKeyMismatch: a record names another cluster than its key does.
	// Each cluster may write only its own keys, so the key is the truth;
	// a record lying about its cluster (or, for clusters and bundles,
	// claiming another cluster's trust domain) is refused.
	ErrKeyMismatch = errors.New("store: record does not match its key")
	// ErrOldLayout: an export record at a key of the layout before
	// cluster-first keys (exports/<ns>/<svc>/<cluster>). It is also an
	// ErrKeyMismatch; `causeway etcd migrate` moves such keys.
	ErrOldLayout = errors.New("store: export key of the old layout (run `causeway etcd migrate`)")
)

// versioned is implemented by every record message.
type versioned interface {
	proto.Message
	GetSchemaVersion() uint32
}

// Encode marshals a record, stamping the current schema version. m is
// not modified (callers may share it with readers): a record of another
// version is stamped on a copy.
func Encode(m proto.Message) ([]byte, error) {
	if v, ok := m.(versioned); ok && v.GetSchemaVersion() != SchemaVersion {
		m = proto.Clone(m)
	}
	switch r := m.(type) {
	case *causewayv1.ClusterRecord:
		r.SchemaVersion = SchemaVersion
	case *causewayv1.GatewayRecord:
		r.SchemaVersion = SchemaVersion
	case *causewayv1.ExportRecord:
		r.SchemaVersion = SchemaVersion
	case *causewayv1.ImportRecord:
		r.SchemaVersion = SchemaVersion
	case *causewayv1.DrainRecord:
		r.SchemaVersion = SchemaVersion
	case *causewayv1.TrustBundle:
		r.SchemaVersion = SchemaVersion
	case *causewayv1.VIPAllocation:
		r.SchemaVersion = SchemaVersion
	default:
		return nil, fmt.Errorf("encode %T: not a record type", m)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	return b, nil
}

func decodeInto(value []byte, m versioned) error {
	if err := proto.Unmarshal(value, m); err != nil {
		return fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if v := m.GetSchemaVersion(); v != SchemaVersion {
		return fmt.Errorf("%w: %d (this build reads %d)", ErrUnknownVersion, v, SchemaVersion)
	}
	return nil
}

// DecodeEntry decodes the value of a full key into a catalog entry.
// VIP reservations are not catalog entries: DecodeEntry returns (nil, nil).
func DecodeEntry(key string, value []byte) (*causewayv1.Entry, error) {
	kind, segments, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	e := &causewayv1.Entry{Key: RelativeKey(key)}
	var m versioned
	switch kind {
	case KindClusters:
		r := &causewayv1.ClusterRecord{}
		e.Record, m = &causewayv1.Entry_Cluster{Cluster: r}, r
	case KindGateways:
		r := &causewayv1.GatewayRecord{}
		e.Record, m = &causewayv1.Entry_Gateway{Gateway: r}, r
	case KindExports:
		r := &causewayv1.ExportRecord{}
		e.Record, m = &causewayv1.Entry_Export{Export: r}, r
	case KindImports:
		r := &causewayv1.ImportRecord{}
		e.Record, m = &causewayv1.Entry_Import{Import: r}, r
	case KindDrain:
		r := &causewayv1.DrainRecord{}
		e.Record, m = &causewayv1.Entry_Drain{Drain: r}, r
	case KindBundles:
		r := &causewayv1.TrustBundle{}
		e.Record, m = &causewayv1.Entry_Bundle{Bundle: r}, r
	default:
		return nil, nil
	}
	if err := decodeInto(value, m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	if err := checkOwner(kind, segments, e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return e, nil
}

// checkOwner requires the cluster a record names to be the one its key
// names, and a cluster's or bundle's trust domain to belong to it
// ("<cluster>.<domain>").
func checkOwner(kind string, seg []string, e *causewayv1.Entry) error {
	var named, td string
	switch r := e.GetRecord().(type) {
	case *causewayv1.Entry_Cluster:
		named, td = r.Cluster.GetName(), r.Cluster.GetTrustDomain()
	case *causewayv1.Entry_Gateway:
		named = r.Gateway.GetCluster()
	case *causewayv1.Entry_Export:
		named = r.Export.GetCluster()
	case *causewayv1.Entry_Import:
		named = r.Import.GetCluster()
	case *causewayv1.Entry_Drain:
		named = r.Drain.GetCluster()
	case *causewayv1.Entry_Bundle:
		named, td = r.Bundle.GetCluster(), r.Bundle.GetTrustDomain()
	default:
		return nil
	}
	owner := ownerOf(seg)
	if kind == KindExports && named != owner && named == seg[2] {
		return fmt.Errorf("%w: %w: export record of cluster %q", ErrKeyMismatch, ErrOldLayout, named)
	}
	if named != owner {
		return fmt.Errorf("%w: %s record names cluster %q", ErrKeyMismatch, kind, named)
	}
	if td != "" && !strings.HasPrefix(td, owner+".") {
		return fmt.Errorf("%w: trust domain %q is not cluster %s's", ErrKeyMismatch, td, owner)
	}
	return nil
}

// ownerOf is the cluster a per-cluster key with segments seg belongs to:
// every per-cluster key names its cluster first.
func ownerOf(seg []string) string { return seg[0] }

// KeyOwner returns the kind of a full key and the cluster it belongs to
// (the only cluster that may write it); ok is false for keys that are not
// Causeway keys.
func KeyOwner(key string) (kind, cluster string, ok bool) {
	kind, seg, err := ParseKey(key)
	if err != nil {
		return "", "", false
	}
	return kind, ownerOf(seg), true
}

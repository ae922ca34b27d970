package store

import (
	"errors"
	"fmt"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"google.golang.org/protobuf/proto"
)

// SchemaVersion is the record version this build reads and writes.
const SchemaVersion = 1

// Sentinel errors of decoding.
var (
	ErrUnknownVersion = errors.New("store: unknown schema version")
	ErrUndecodable    = errors.New("store: undecodable value")
)

// versioned is implemented by every record message.
type versioned interface {
	proto.Message
	GetSchemaVersion() uint32
}

// Encode marshals a record, stamping the current schema version.
func Encode(m proto.Message) ([]byte, error) {
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
	kind, _, err := ParseKey(key)
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
	return e, nil
}

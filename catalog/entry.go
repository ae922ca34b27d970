package catalog

import (
	"errors"
	"fmt"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// SchemaVersion is the record schema version this build reads (the
// federator's store writes the same one).
const SchemaVersion = 1

// checkEntry reports why a received entry cannot be used: no key, a
// record kind this build does not know, or a record of another schema
// version.
func checkEntry(e *causewayv1.Entry) error {
	if e.GetKey() == "" {
		return errors.New("entry without a key")
	}
	var v uint32
	switch r := e.GetRecord().(type) {
	case *causewayv1.Entry_Cluster:
		v = r.Cluster.GetSchemaVersion()
	case *causewayv1.Entry_Gateway:
		v = r.Gateway.GetSchemaVersion()
	case *causewayv1.Entry_Export:
		v = r.Export.GetSchemaVersion()
	case *causewayv1.Entry_Import:
		v = r.Import.GetSchemaVersion()
	case *causewayv1.Entry_Drain:
		v = r.Drain.GetSchemaVersion()
	case *causewayv1.Entry_Bundle:
		v = r.Bundle.GetSchemaVersion()
	default:
		return fmt.Errorf("record of unknown kind %T", e.GetRecord())
	}
	if v != SchemaVersion {
		return fmt.Errorf("schema version %d (this build reads %d)", v, SchemaVersion)
	}
	return nil
}

package cli

import (
	"fmt"
	"io"
	"strings"
)

// TrustResult is the answer of `causeway clusters trust`.
type TrustResult struct {
	Cluster string `json:"cluster"`
	// Sequence is the trusted version of the cluster's bundle; a string in
	// JSON, as it can exceed 2^53.
	Sequence     uint64   `json:"sequence,string"`
	Fingerprints []string `json:"fingerprints"`
	// Changed is false when exactly this was trusted already.
	Changed bool `json:"changed"`
}

// WriteTable renders one sentence.
func (r *TrustResult) WriteTable(w io.Writer) error {
	verb := "now trusts"
	if !r.Changed {
		verb = "already trusted"
	}
	_, err := fmt.Fprintf(w, "%s %s's trust bundle (sequence %d, CAs %s)\n", verb, r.Cluster, r.Sequence, strings.Join(r.Fingerprints, ", "))
	return err
}

package certsctl

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// RotateOptions are the flags of `causeway certs rotate-ca`.
type RotateOptions struct {
	// Cluster whose CA rotates. Required.
	Cluster string
	// Domain is the clusterset domain. If empty, DefaultDomain.
	Domain string
	// Dir is the cluster's CA directory. Required.
	Dir string
	// CALifetime, LeafLifetime, PropagationWait, Force and Restart are
	// those of certs.RotationOptions.
	CALifetime, LeafLifetime, PropagationWait time.Duration
	Force, Restart                            bool
	// Status only reports where the rotation stands.
	Status bool
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// RotateReport is the answer of `causeway certs rotate-ca`.
type RotateReport struct {
	Cluster     string `json:"cluster"`
	TrustDomain string `json:"trustDomain"`
	Dir         string `json:"dir"`
	// Phase is "" (no rotation recorded), published, switching, reissued
	// or done (certs.RotationPhase).
	Phase string `json:"phase"`
	// Did says what this run changed; empty when nothing.
	Did string `json:"did"`
	// Next says what the operator does next.
	Next string `json:"next"`
	// NextStepAt is the earliest time the next step runs without --force.
	NextStepAt time.Time           `json:"nextStepAt,omitzero"`
	State      certs.RotationState `json:"state"`
	Signing    CertInfo            `json:"signing"`
	Bundle     []CertInfo          `json:"bundle"`
}

// RotateCA runs the next step of the CA rotation of o.Dir (or, with
// o.Status, only reports). When the step must wait, it returns the report
// and the *certs.RotationWaitError.
func RotateCA(o RotateOptions) (*RotateReport, error) {
	if !names.IsDNSLabel(o.Cluster) {
		return nil, fmt.Errorf("--cluster %q: want a DNS label", o.Cluster)
	}
	if o.Dir == "" {
		return nil, errors.New("--dir: the cluster's CA directory is required")
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	td := certs.TrustDomainFor(o.Cluster, o.Domain)
	ca, _, err := certs.LoadCADir(dir)
	if err != nil {
		st, ok, serr := certs.ReadRotationState(dir)
		if serr != nil || !ok || st.Phase != certs.RotationSwitching {
			return nil, err
		}
		// A step 2 cut short left ca.crt/ca.key mismatched: finishing it
		// repairs them.
	} else if ca.TrustDomain != td {
		return nil, fmt.Errorf("%s holds the CA of %s, not of cluster %s (%s); check --cluster and --domain", dir, ca.TrustDomain, o.Cluster, td)
	}
	var (
		st      certs.RotationState
		stepErr error
		did     string
	)
	if o.Status {
		st, _, stepErr = certs.ReadRotationState(dir)
	} else {
		before, _, _ := certs.ReadRotationState(dir)
		st, stepErr = certs.RotateCAStep(dir, certs.RotationOptions{
			TrustDomain: td, CALifetime: o.CALifetime, LeafLifetime: o.LeafLifetime, PropagationWait: o.PropagationWait,
			Force: o.Force, Restart: o.Restart, Now: now,
		})
		if stepErr == nil && st.Phase != before.Phase {
			did = describeStep(st)
		}
	}
	var wait *certs.RotationWaitError
	if stepErr != nil && !errors.As(stepErr, &wait) && !errors.Is(stepErr, certs.ErrRotationDone) {
		return nil, stepErr
	}
	r, err := newRotateReport(o.Cluster, td, dir, st, now())
	if err != nil {
		return nil, err
	}
	r.Did = did
	if wait != nil {
		return r, stepErr
	}
	return r, nil
}

func newRotateReport(cluster, td, dir string, st certs.RotationState, now time.Time) (*RotateReport, error) {
	ca, bundle, err := certs.LoadCADir(dir)
	if err != nil {
		return nil, err
	}
	r := &RotateReport{Cluster: cluster, TrustDomain: td, Dir: dir, Phase: string(st.Phase), State: st,
		NextStepAt: st.NextStepAt(), Signing: newCertInfo(ca.Cert, now), Bundle: []CertInfo{}}
	for _, c := range bundle {
		r.Bundle = append(r.Bundle, newCertInfo(c, now))
	}
	again := fmt.Sprintf("causeway certs rotate-ca --cluster %s --dir %s", cluster, dir)
	switch st.Phase {
	case "":
		r.Next = "no rotation in progress; run `" + again + "` to start one (step 1 of 3)"
	case certs.RotationPublished:
		r.Next = fmt.Sprintf("wait until every cluster's federator and gateways have the bundle with both CAs "+
			"(`causeway certs bundles` against each cluster shows 2 CAs for %s), not before %s; then run `%s` (step 2: sign with the new CA)",
			cluster, r.NextStepAt.Format(time.RFC3339), again)
	case certs.RotationSwitching:
		r.Next = "step 2 was interrupted; run `" + again + "` to finish it"
	case certs.RotationReissued:
		r.Next = fmt.Sprintf("components renew with the new CA at 2/3 of their leaf lifetime; once every leaf of the old CA "+
			"has expired, not before %s, run `%s` (step 3: drop the old CA)", r.NextStepAt.Format(time.RFC3339), again)
	case certs.RotationDone:
		r.Next = "the rotation is complete; `" + again + " --restart` starts the next one"
	}
	return r, nil
}

func describeStep(st certs.RotationState) string {
	switch st.Phase {
	case certs.RotationPublished:
		return fmt.Sprintf("step 1 of 3: created CA %s and published it in %s next to CA %s, which still signs",
			st.NewSerial, certs.BundleFile, st.OldSerial)
	case certs.RotationReissued:
		return fmt.Sprintf("step 2 of 3: CA %s signs from now on (old key removed); both CAs stay trusted", st.NewSerial)
	case certs.RotationDone:
		return fmt.Sprintf("step 3 of 3: dropped CA %s from %s", st.OldSerial, certs.BundleFile)
	}
	return ""
}

// WriteTable implements cli.Tabular.
func (r *RotateReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "CA rotation of cluster %s (%s) in %s\n", r.Cluster, r.TrustDomain, r.Dir)
	if r.Did != "" {
		fmt.Fprintf(w, "done: %s\n", r.Did)
	}
	phase := r.Phase
	if phase == "" {
		phase = "none"
	}
	fmt.Fprintf(w, "phase: %s\n", phase)
	fmt.Fprintln(w, "signing CA:")
	writeCert(w, "  ", r.Signing)
	fmt.Fprintf(w, "bundle (%d CA):\n", len(r.Bundle))
	for _, c := range r.Bundle {
		fmt.Fprintf(w, "  - serial %s, not after %s (%s left)\n", c.Serial, c.NotAfter.Format(time.RFC3339), c.TimeLeft)
	}
	_, err := fmt.Fprintf(w, "next: %s\n", r.Next)
	return err
}

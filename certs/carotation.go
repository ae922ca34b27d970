package certs

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// RotationPhase is how far a CA rotation has gone.
type RotationPhase string

// Rotation phases, in order. Each step of RotateCAStep moves to the next.
const (
	// RotationPublished: step 1 done. A new CA exists (NextCACertFile) and
	// the bundle holds the old and the new CA; the old CA still signs.
	RotationPublished RotationPhase = "published"
	// RotationSwitching: step 2 began but did not finish; rerunning
	// finishes it.
	RotationSwitching RotationPhase = "switching"
	// RotationReissued: step 2 done. The new CA signs (CACertFile), so
	// renewing components get leaves of the new CA; the bundle still holds
	// both.
	RotationReissued RotationPhase = "reissued"
	// RotationDone: step 3 done. The bundle holds the new CA only.
	RotationDone RotationPhase = "done"
)

// RotationState is the content of RotationStateFile.
type RotationState struct {
	TrustDomain string        `json:"trustDomain"`
	Phase       RotationPhase `json:"phase"`
	// OldSerial and NewSerial identify the CAs (SerialHex).
	OldSerial string `json:"oldSerial"`
	NewSerial string `json:"newSerial"`
	// PublishedAt, ReissuedAt and DoneAt are when steps 1, 2 and 3 ended.
	PublishedAt time.Time `json:"publishedAt"`
	ReissuedAt  time.Time `json:"reissuedAt,omitzero"`
	DoneAt      time.Time `json:"doneAt,omitzero"`
	// LeafLifetimeSeconds is the leaf lifetime step 3 waits for after step 2.
	LeafLifetimeSeconds int64 `json:"leafLifetimeSeconds"`
	// PropagationWaitSeconds is how long step 2 waits after step 1.
	PropagationWaitSeconds int64 `json:"propagationWaitSeconds"`
}

// NextStepAt is the earliest time the next step may run without Force;
// zero when it may run at once or the rotation is done.
func (s RotationState) NextStepAt() time.Time {
	switch s.Phase {
	case RotationPublished:
		return s.PublishedAt.Add(time.Duration(s.PropagationWaitSeconds) * time.Second)
	case RotationReissued:
		return s.ReissuedAt.Add(time.Duration(s.LeafLifetimeSeconds) * time.Second)
	}
	return time.Time{}
}

// RotationOptions configures RotateCAStep.
type RotationOptions struct {
	// TrustDomain must be the trust domain of the directory's CA. Required.
	TrustDomain string
	// CALifetime is the new CA's lifetime. If zero, DefaultCALifetime.
	CALifetime time.Duration
	// LeafLifetime is the longest lifetime of a leaf the old CA may have
	// issued: step 3 (dropping the old CA) waits this long after step 2.
	// If zero, DefaultLeafLifetime.
	LeafLifetime time.Duration
	// PropagationWait is how long step 2 (signing with the new CA) waits
	// after step 1, so every cluster has received the new bundle. If zero,
	// DefaultPropagationWait.
	PropagationWait time.Duration
	// Force runs the next step without waiting.
	Force bool
	// Restart starts a new rotation when the last one is done.
	Restart bool
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// DefaultPropagationWait is how long step 2 of a CA rotation waits after
// step 1 by default.
const DefaultPropagationWait = 5 * time.Minute

// ErrRotationDone is returned by RotateCAStep when the rotation recorded in
// the directory is complete and RotationOptions.Restart is not set.
var ErrRotationDone = errors.New("certs: CA rotation already done")

// RotationWaitError is returned by RotateCAStep when the next step must
// not run yet; nothing was changed.
type RotationWaitError struct {
	// Step is the step that has to wait (2 or 3).
	Step int
	// Until is when it may run.
	Until time.Time
	// Reason says what the wait is for.
	Reason string
}

func (e *RotationWaitError) Error() string {
	return fmt.Sprintf("step %d of the CA rotation must wait until %s (%s); run it again then, or pass --force",
		e.Step, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// ReadRotationState reads dir's RotationStateFile; ok is false when there
// is none.
func ReadRotationState(dir string) (st RotationState, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, RotationStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return RotationState{}, false, nil
	}
	if err != nil {
		return RotationState{}, false, fmt.Errorf("read rotation state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return RotationState{}, false, fmt.Errorf("read rotation state %s: %w", filepath.Join(dir, RotationStateFile), err)
	}
	return st, true, nil
}

func writeRotationState(dir string, st RotationState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("write rotation state: %w", err)
	}
	return WriteFileExclusive(filepath.Join(dir, RotationStateFile), append(b, '\n'), 0o600, true)
}

// RotateCAStep runs the next step of the CA rotation of the CA directory
// dir and returns the state after it. The procedure is resumable: every
// step is idempotent and recorded in RotationStateFile only once complete,
// so running RotateCAStep again after a crash or an error redoes or
// finishes the interrupted step.
//
//  1. publish: create a new CA (NextCACertFile, NextCAKeyFile) and write
//     the bundle with the old and the new CA. The federator publishes it;
//     the old CA keeps signing.
//  2. reissue (not before PropagationWait after step 1): the new CA becomes
//     CACertFile/CAKeyFile, so every renewal gets a leaf of the new CA; the
//     old key is gone. The bundle still holds both CAs, so leaves of either
//     verify everywhere.
//  3. drop (not before LeafLifetime after step 2, when every leaf of the
//     old CA has expired): the bundle holds the new CA only.
//
// A step that must wait returns a *RotationWaitError and changes nothing.
func RotateCAStep(dir string, o RotationOptions) (RotationState, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	st, ok, err := ReadRotationState(dir)
	if err != nil {
		return RotationState{}, err
	}
	if ok && st.TrustDomain != o.TrustDomain {
		return st, fmt.Errorf("rotate ca: %s records a rotation of %s, not %s", RotationStateFile, st.TrustDomain, o.TrustDomain)
	}
	switch {
	case !ok:
		return rotatePublish(dir, o)
	case st.Phase == RotationDone:
		if !o.Restart {
			return st, fmt.Errorf("rotate ca of %s: new CA %s in place since %s: %w", st.TrustDomain, st.NewSerial,
				st.DoneAt.UTC().Format(time.RFC3339), ErrRotationDone)
		}
		return rotatePublish(dir, o)
	case st.Phase == RotationPublished || st.Phase == RotationSwitching:
		return rotateReissue(dir, st, o)
	case st.Phase == RotationReissued:
		return rotateDrop(dir, st, o)
	}
	return st, fmt.Errorf("rotate ca: unknown phase %q in %s", st.Phase, RotationStateFile)
}

// rotatePublish is step 1.
func rotatePublish(dir string, o RotationOptions) (RotationState, error) {
	old, bundle, err := LoadCADir(dir)
	if err != nil {
		return RotationState{}, fmt.Errorf("rotate ca step 1: %w", err)
	}
	if old.TrustDomain != o.TrustDomain {
		return RotationState{}, fmt.Errorf("rotate ca step 1: %s holds the CA of %s, not %s", dir, old.TrustDomain, o.TrustDomain)
	}
	next, err := loadCAFiles(dir, NextCACertFile, NextCAKeyFile)
	if err != nil || next.TrustDomain != old.TrustDomain || next.Cert.Equal(old.Cert) {
		// None yet, or a half-written one from an interrupted step 1,
		// which was never published: make a new one.
		lifetime := o.CALifetime
		if lifetime <= 0 {
			lifetime = DefaultCALifetime
		}
		if next, err = NewCA(old.TrustDomain, lifetime, o.Now()); err != nil {
			return RotationState{}, fmt.Errorf("rotate ca step 1: %w", err)
		}
		if err := writeCAFiles(dir, next, NextCACertFile, NextCAKeyFile, true); err != nil {
			return RotationState{}, fmt.Errorf("rotate ca step 1: %w", err)
		}
	}
	bundle = dedupeCerts(append(bundle, next.Cert))
	if err := WriteFileExclusive(filepath.Join(dir, BundleFile), EncodeCertificatesPEM(bundle), 0o644, true); err != nil {
		return RotationState{}, fmt.Errorf("rotate ca step 1: %w", err)
	}
	wait := o.PropagationWait
	if wait <= 0 {
		wait = DefaultPropagationWait
	}
	st := RotationState{
		TrustDomain: old.TrustDomain, Phase: RotationPublished,
		OldSerial: SerialHex(old.Cert), NewSerial: SerialHex(next.Cert),
		PublishedAt: o.Now().UTC(), PropagationWaitSeconds: int64(wait / time.Second),
	}
	if err := writeRotationState(dir, st); err != nil {
		return RotationState{}, fmt.Errorf("rotate ca step 1: %w", err)
	}
	return st, nil
}

// rotateReissue is step 2.
func rotateReissue(dir string, st RotationState, o RotationOptions) (RotationState, error) {
	if st.Phase == RotationPublished {
		if until := st.NextStepAt(); !o.Force && o.Now().Before(until) {
			return st, &RotationWaitError{Step: 2, Until: until,
				Reason: "every cluster must have the bundle with the new CA; check with `causeway certs bundles`"}
		}
		st.Phase = RotationSwitching
		if err := writeRotationState(dir, st); err != nil {
			return st, fmt.Errorf("rotate ca step 2: %w", err)
		}
	}
	next, nextErr := loadCAFiles(dir, NextCACertFile, NextCAKeyFile)
	if nextErr == nil {
		if SerialHex(next.Cert) != st.NewSerial {
			return st, fmt.Errorf("rotate ca step 2: %s has serial %s, the rotation recorded %s", NextCACertFile, SerialHex(next.Cert), st.NewSerial)
		}
		// Key first: a crash between the two writes leaves a mismatched
		// pair that LoadCA refuses (nothing signs with it) and that the
		// next run rewrites from the still present next files.
		if err := writeCAFiles(dir, next, CACertFile, CAKeyFile, true); err != nil {
			return st, fmt.Errorf("rotate ca step 2: %w", err)
		}
	}
	cur, _, err := LoadCADir(dir)
	if err != nil {
		return st, fmt.Errorf("rotate ca step 2: %w (and %s: %v)", err, NextCACertFile, nextErr)
	}
	if SerialHex(cur.Cert) != st.NewSerial {
		return st, fmt.Errorf("rotate ca step 2: %s has serial %s, want the new CA %s; %s: %v",
			CACertFile, SerialHex(cur.Cert), st.NewSerial, NextCACertFile, nextErr)
	}
	for _, name := range []string{NextCAKeyFile, NextCACertFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("rotate ca step 2: %w", err)
		}
	}
	lifetime := o.LeafLifetime
	if lifetime <= 0 {
		lifetime = DefaultLeafLifetime
	}
	st.Phase = RotationReissued
	st.ReissuedAt = o.Now().UTC()
	st.LeafLifetimeSeconds = int64((lifetime + time.Second - 1) / time.Second)
	if err := writeRotationState(dir, st); err != nil {
		return st, fmt.Errorf("rotate ca step 2: %w", err)
	}
	return st, nil
}

// rotateDrop is step 3.
func rotateDrop(dir string, st RotationState, o RotationOptions) (RotationState, error) {
	if until := st.NextStepAt(); !o.Force && o.Now().Before(until) {
		return st, &RotationWaitError{Step: 3, Until: until,
			Reason: "leaves issued by the old CA before step 2 must have expired"}
	}
	cur, bundle, err := LoadCADir(dir)
	if err != nil {
		return st, fmt.Errorf("rotate ca step 3: %w", err)
	}
	if SerialHex(cur.Cert) != st.NewSerial {
		return st, fmt.Errorf("rotate ca step 3: %s has serial %s, the rotation recorded %s", CACertFile, SerialHex(cur.Cert), st.NewSerial)
	}
	if len(bundle) != 1 || !slices.ContainsFunc(bundle, cur.Cert.Equal) {
		err := WriteFileExclusive(filepath.Join(dir, BundleFile), EncodeCertificatesPEM([]*x509.Certificate{cur.Cert}), 0o644, true)
		if err != nil {
			return st, fmt.Errorf("rotate ca step 3: %w", err)
		}
	}
	st.Phase = RotationDone
	st.DoneAt = o.Now().UTC()
	if err := writeRotationState(dir, st); err != nil {
		return st, fmt.Errorf("rotate ca step 3: %w", err)
	}
	return st, nil
}

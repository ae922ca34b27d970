package certs_test

import (
	"crypto/x509"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

func TestInitCADir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "east")
	now := time.Now()
	ca, err := certs.InitCADir(dir, eastTD, 48*time.Hour, now, false)
	require.NoError(t, err)
	require.Equal(t, eastTD, ca.TrustDomain)
	require.WithinDuration(t, now.Add(48*time.Hour), ca.Cert.NotAfter, time.Second)

	for name, perm := range map[string]os.FileMode{certs.CACertFile: 0o644, certs.CAKeyFile: 0o600, certs.BundleFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		require.Equal(t, perm, fi.Mode().Perm(), name)
	}
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	loaded, bundle, err := certs.LoadCADir(dir)
	require.NoError(t, err)
	require.True(t, ca.Cert.Equal(loaded.Cert))
	require.True(t, ca.Key.Equal(loaded.Key))
	require.Len(t, bundle, 1)
	require.True(t, bundle[0].Equal(ca.Cert))

	// Never overwritten without force, and nothing is written.
	keyBefore, err := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
	require.NoError(t, err)
	_, err = certs.InitCADir(dir, eastTD, time.Hour, now, false)
	require.ErrorIs(t, err, fs.ErrExist)
	require.ErrorContains(t, err, "--force")
	keyAfter, err := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
	require.NoError(t, err)
	require.Equal(t, keyBefore, keyAfter)

	// A lone leftover file is enough to refuse.
	other := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(other, certs.BundleFile), []byte("x"), 0o644))
	_, err = certs.InitCADir(other, eastTD, time.Hour, now, false)
	require.ErrorIs(t, err, fs.ErrExist)
	_, err = os.Stat(filepath.Join(other, certs.CAKeyFile))
	require.ErrorIs(t, err, fs.ErrNotExist)

	// With force, replaced.
	ca2, err := certs.InitCADir(dir, eastTD, time.Hour, now, true)
	require.NoError(t, err)
	require.False(t, ca2.Cert.Equal(ca.Cert))
	fi, err = os.Stat(filepath.Join(dir, certs.CAKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, err = certs.InitCADir(t.TempDir(), "Bad Domain", time.Hour, now, false)
	require.ErrorIs(t, err, certs.ErrInvalidID)
}

func TestLoadCADirRejectsForeignBundle(t *testing.T) {
	dir := t.TempDir()
	_, err := certs.InitCADir(dir, eastTD, time.Hour, time.Now(), false)
	require.NoError(t, err)
	west, err := certs.NewCA(westTD, time.Hour, time.Now())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, certs.BundleFile), certs.EncodeCertificatesPEM([]*x509.Certificate{west.Cert}), 0o644))
	_, _, err = certs.LoadCADir(dir)
	require.ErrorContains(t, err, "is of trust domain west.clusterset.local")
}

func TestCASet(t *testing.T) {
	now := time.Now()
	old, err := certs.NewCA(eastTD, time.Hour, now)
	require.NoError(t, err)
	next, err := certs.NewCA(eastTD, time.Hour, now)
	require.NoError(t, err)
	west, err := certs.NewCA(westTD, time.Hour, now)
	require.NoError(t, err)

	s, err := certs.NewCASet(old, nil)
	require.NoError(t, err)
	require.Equal(t, eastTD, s.TrustDomain())
	got, err := s.SigningCA()
	require.NoError(t, err)
	require.Same(t, old, got)
	require.Len(t, s.Authorities(), 1)

	ch := s.Changed()
	require.NoError(t, s.Update(old, []*x509.Certificate{old.Cert})) // no change
	select {
	case <-ch:
		t.Fatal("Changed fired without a change")
	default:
	}

	// Step 1: publish both.
	require.NoError(t, s.Update(old, []*x509.Certificate{old.Cert, next.Cert, nil, old.Cert}))
	<-ch
	require.Len(t, s.Authorities(), 2)
	b, ok := s.Bundle(eastTD)
	require.True(t, ok)
	require.Len(t, b, 2)
	_, ok = s.Bundle(westTD)
	require.False(t, ok)

	// Refused updates change nothing.
	require.ErrorContains(t, s.Update(next, []*x509.Certificate{old.Cert}), "not in the bundle")
	require.ErrorContains(t, s.Update(west, nil), "trust domain")
	require.ErrorContains(t, s.Update(next, []*x509.Certificate{next.Cert, west.Cert}), "trust domain")
	leaf, err := old.NewLeafKeyPair("gateway", time.Hour, now)
	require.NoError(t, err)
	require.Error(t, s.Update(next, []*x509.Certificate{next.Cert, leaf.Leaf}))
	require.Error(t, s.Update(nil, nil))
	got, err = s.SigningCA()
	require.NoError(t, err)
	require.Same(t, old, got)
	require.Len(t, s.Authorities(), 2)

	// Steps 2 and 3.
	ch = s.Changed()
	require.NoError(t, s.Update(next, []*x509.Certificate{old.Cert, next.Cert}))
	<-ch
	got, err = s.SigningCA()
	require.NoError(t, err)
	require.Same(t, next, got)
	require.NoError(t, s.Update(next, nil))
	require.Len(t, s.Authorities(), 1)
	require.True(t, s.Authorities()[0].Equal(next.Cert))

	var nilSet *certs.CASet
	_, err = nilSet.SigningCA()
	require.Error(t, err)
}

// rotationClock is a settable clock for RotateCAStep.
type rotationClock struct{ t time.Time }

func (c *rotationClock) now() time.Time { return c.t }

// Over 80 lines: one three-step procedure whose steps share its CA directory.
func TestRotateCAStepFullProcedure(t *testing.T) {
	dir := t.TempDir()
	clock := &rotationClock{t: time.Now()}
	old, err := certs.InitCADir(dir, eastTD, 30*24*time.Hour, clock.t, false)
	require.NoError(t, err)
	opts := certs.RotationOptions{TrustDomain: eastTD, LeafLifetime: time.Hour, PropagationWait: 2 * time.Minute, Now: clock.now}

	// A leaf issued by the old CA before the rotation.
	oldLeaf, err := old.NewLeafKeyPair("gateway", time.Hour, clock.t)
	require.NoError(t, err)
	verifies := func(t *testing.T, leaf *x509.Certificate, bundle []*x509.Certificate) bool {
		bs := certs.NewBundleSet()
		bs.Set(eastTD, bundle)
		_, _, err := certs.VerifyChain([][]byte{leaf.Raw}, bs, clock.t)
		return err == nil
	}

	_, ok, err := certs.ReadRotationState(dir)
	require.NoError(t, err)
	require.False(t, ok)

	// Wrong cluster: refused before anything happens.
	_, err = certs.RotateCAStep(dir, certs.RotationOptions{TrustDomain: westTD, Now: clock.now})
	require.ErrorContains(t, err, "not west.clusterset.local")

	// Step 1: the bundle carries old and new; the old CA still signs.
	st, err := certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationPublished, st.Phase)
	require.Equal(t, certs.SerialHex(old.Cert), st.OldSerial)
	signing, bundle, err := certs.LoadCADir(dir)
	require.NoError(t, err)
	require.True(t, signing.Cert.Equal(old.Cert))
	require.Len(t, bundle, 2)
	next, err := certs.ReadCertificatesFile(filepath.Join(dir, certs.NextCACertFile))
	require.NoError(t, err)
	require.Equal(t, st.NewSerial, certs.SerialHex(next[0]))
	fi, err := os.Stat(filepath.Join(dir, certs.NextCAKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Step 2 waits for propagation, changing nothing.
	_, err = certs.RotateCAStep(dir, opts)
	var wait *certs.RotationWaitError
	require.ErrorAs(t, err, &wait)
	require.Equal(t, 2, wait.Step)
	require.Equal(t, st.PublishedAt.Add(2*time.Minute), wait.Until)
	st2, _, err := certs.ReadRotationState(dir)
	require.NoError(t, err)
	require.Equal(t, certs.RotationPublished, st2.Phase)

	// Step 2: the new CA signs; both still trusted.
	clock.t = clock.t.Add(3 * time.Minute)
	st, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationReissued, st.Phase)
	signing, bundle, err = certs.LoadCADir(dir)
	require.NoError(t, err)
	require.Equal(t, st.NewSerial, certs.SerialHex(signing.Cert))
	require.Len(t, bundle, 2)
	_, err = os.Stat(filepath.Join(dir, certs.NextCAKeyFile))
	require.ErrorIs(t, err, fs.ErrNotExist)
	newLeaf, err := signing.NewLeafKeyPair("gateway", time.Hour, clock.t)
	require.NoError(t, err)
	require.True(t, verifies(t, oldLeaf.Leaf, bundle), "old leaf verifies during the overlap")
	require.True(t, verifies(t, newLeaf.Leaf, bundle), "new leaf verifies during the overlap")

	// Step 3 waits for the old leaves to expire.
	_, err = certs.RotateCAStep(dir, opts)
	require.ErrorAs(t, err, &wait)
	require.Equal(t, 3, wait.Step)

	clock.t = clock.t.Add(time.Hour)
	st, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationDone, st.Phase)
	_, bundle, err = certs.LoadCADir(dir)
	require.NoError(t, err)
	require.Len(t, bundle, 1)
	require.True(t, bundle[0].Equal(signing.Cert))
	require.False(t, verifies(t, oldLeaf.Leaf, bundle), "old CA dropped")

	// Rerunning does not start a new rotation by accident.
	_, err = certs.RotateCAStep(dir, opts)
	require.ErrorIs(t, err, certs.ErrRotationDone)
	opts.Restart = true
	st, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationPublished, st.Phase)
	require.Equal(t, certs.SerialHex(signing.Cert), st.OldSerial)
}

func TestRotateCAStepResumes(t *testing.T) {
	dir := t.TempDir()
	clock := &rotationClock{t: time.Now()}
	_, err := certs.InitCADir(dir, eastTD, 30*24*time.Hour, clock.t, false)
	require.NoError(t, err)
	opts := certs.RotationOptions{TrustDomain: eastTD, Force: true, Now: clock.now}

	// A step 1 that crashed after writing only the next key: rerun makes
	// a whole new CA.
	require.NoError(t, os.WriteFile(filepath.Join(dir, certs.NextCAKeyFile), []byte("partial"), 0o600))
	st, err := certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationPublished, st.Phase)

	// A step 2 that crashed between writing the new key and the new
	// certificate: ca.key is new, ca.crt still old (a mismatched pair).
	next, err := os.ReadFile(filepath.Join(dir, certs.NextCAKeyFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, certs.CAKeyFile), next, 0o600))
	st.Phase = certs.RotationSwitching
	writeState(t, dir, st)
	_, _, err = certs.LoadCADir(dir)
	require.ErrorContains(t, err, "does not match")

	st, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationReissued, st.Phase)
	signing, _, err := certs.LoadCADir(dir)
	require.NoError(t, err)
	require.Equal(t, st.NewSerial, certs.SerialHex(signing.Cert))

	// A step 2 that crashed after removing the next files but before
	// recording the phase.
	st.Phase = certs.RotationSwitching
	writeState(t, dir, st)
	st, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationReissued, st.Phase)

	st, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.Equal(t, certs.RotationDone, st.Phase)
}

func writeState(t *testing.T, dir string, st certs.RotationState) {
	t.Helper()
	b, err := json.Marshal(st)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, certs.RotationStateFile), b, 0o600))
}

func TestCADirWatcherFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.InitCADir(dir, eastTD, 30*24*time.Hour, time.Now(), false)
	require.NoError(t, err)
	set, err := certs.LoadCASet(dir)
	require.NoError(t, err)
	w := &certs.CADirWatcher{Dir: dir, Set: set}
	opts := certs.RotationOptions{TrustDomain: eastTD, Force: true}

	ch := set.Changed()
	_, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.NoError(t, w.Reload())
	<-ch
	require.Len(t, set.Authorities(), 2)
	signing, err := set.SigningCA()
	require.NoError(t, err)
	require.True(t, signing.Cert.Equal(ca.Cert))

	_, err = certs.RotateCAStep(dir, opts)
	require.NoError(t, err)
	require.NoError(t, w.Reload())
	signing, err = set.SigningCA()
	require.NoError(t, err)
	require.False(t, signing.Cert.Equal(ca.Cert))

	// A broken directory leaves the set alone.
	require.NoError(t, os.WriteFile(filepath.Join(dir, certs.CAKeyFile), []byte("broken"), 0o600))
	require.Error(t, w.Reload())
	again, err := set.SigningCA()
	require.NoError(t, err)
	require.Same(t, signing, again)
}

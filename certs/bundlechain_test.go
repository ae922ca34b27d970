package certs_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

const chainTD = "east.clusterset.local"

func newChainCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA(chainTD, time.Hour, time.Now())
	require.NoError(t, err)
	return ca
}

// rotation publishes the three steps of a CA rotation from old to new:
// {old} by old, {old,new} by old, {old,new} (unchanged), {new} by new.
type rotation struct {
	old, new *certs.CA
	recs     []*causewayv1.TrustBundle // after genesis, step 1, step 3
}

func newRotation(t *testing.T) rotation {
	t.Helper()
	r := rotation{old: newChainCA(t), new: newChainCA(t)}
	steps := []struct {
		signing *certs.CA
		auth    []*x509.Certificate
	}{
		{r.old, []*x509.Certificate{r.old.Cert}},
		{r.old, []*x509.Certificate{r.old.Cert, r.new.Cert}},
		{r.new, []*x509.Certificate{r.old.Cert, r.new.Cert}}, // step 2: nothing new to sign
		{r.new, []*x509.Certificate{r.new.Cert}},
	}
	var prev *causewayv1.TrustBundle
	for i, s := range steps {
		rec, err := certs.NextSignedBundle(prev, "east", chainTD, s.signing, s.auth, uint64(10*(i+1)))
		require.NoError(t, err)
		if i == 2 {
			require.True(t, proto.Equal(prev, rec), "step 2 changes nothing published")
			continue
		}
		r.recs = append(r.recs, rec)
		prev = rec
	}
	return r
}

func trustedAt(rec *causewayv1.TrustBundle) certs.TrustedBundle {
	cas, _ := certs.ParseAuthorities(rec.GetX509Authorities())
	return certs.TrustedBundle{TrustDomain: rec.GetTrustDomain(), Sequence: rec.GetSequence(), Authorities: cas}
}

func TestFollowBundle(t *testing.T) {
	r := newRotation(t)
	genesis, step1, step3 := r.recs[0], r.recs[1], r.recs[2]
	evil := newChainCA(t)

	withExtraCA := proto.Clone(step1).(*causewayv1.TrustBundle)
	withExtraCA.X509Authorities = append(withExtraCA.X509Authorities, evil.Cert.Raw)
	withExtraCA.Chain[len(withExtraCA.Chain)-1].X509Authorities = withExtraCA.X509Authorities
	withExtraCA.Sequence++
	withExtraCA.Chain[len(withExtraCA.Chain)-1].Sequence++

	// An etcd writer signs a new link with its own key.
	wrongSigner, err := certs.NextSignedBundle(nil, "east", chainTD, evil, []*x509.Certificate{r.old.Cert, evil.Cert}, step1.GetSequence()+1)
	require.NoError(t, err)
	wrongSigner.Chain = append(proto.Clone(step1).(*causewayv1.TrustBundle).Chain, wrongSigner.Chain...)

	// A forced join: a new CA, unchained.
	replaced, err := certs.NextSignedBundle(nil, "east", chainTD, evil, []*x509.Certificate{evil.Cert}, step3.GetSequence()+1)
	require.NoError(t, err)

	truncated := proto.Clone(step3).(*causewayv1.TrustBundle)
	truncated.Chain = truncated.Chain[len(truncated.Chain)-1:] // only {new} by new

	headMismatch := proto.Clone(step1).(*causewayv1.TrustBundle)
	headMismatch.X509Authorities = [][]byte{r.old.Cert.Raw, evil.Cert.Raw}

	sameCAsLower := proto.Clone(step1).(*causewayv1.TrustBundle)
	sameCAsLower.Sequence += 5
	tests := []struct {
		name    string
		trusted *causewayv1.TrustBundle
		rec     *causewayv1.TrustBundle
		wantErr error
		wantSeq uint64 // sequence trusted afterwards
	}{
		{"same version", step1, step1, nil, step1.GetSequence()},
		{"rotation step 1", genesis, step1, nil, step1.GetSequence()},
		{"rotation step 3", step1, step3, nil, step3.GetSequence()},
		{"missed steps followed", genesis, step3, nil, step3.GetSequence()},
		{"forged CA added", step1, withExtraCA, certs.ErrBundleNotChained, step1.GetSequence()},
		{"wrong signer", step1, wrongSigner, certs.ErrBundleNotChained, step1.GetSequence()},
		{"rollback to an older sequence", step3, step1, certs.ErrBundleRollback, step3.GetSequence()},
		{"replaced CA (forced join)", step3, replaced, certs.ErrBundleNotChained, step3.GetSequence()},
		{"truncated chain, verifier missed the link it needs", genesis, truncated, certs.ErrBundleNotChained, genesis.GetSequence()},
		{"truncated chain, verifier has the step before", step1, truncated, nil, step3.GetSequence()},
		{"record is not its chain head", genesis, headMismatch, certs.ErrBundleNotChained, genesis.GetSequence()},
		{"same CAs at a lower sequence (another replica)", sameCAsLower, step1, nil, sameCAsLower.GetSequence()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certs.FollowBundle("east", trustedAt(tt.trusted), tt.rec)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantSeq, got.Sequence)
			for _, c := range got.Authorities {
				require.False(t, c.Equal(evil.Cert), "the forged CA is never trusted")
			}
		})
	}
}

func TestNextSignedBundleDropsForgedHistory(t *testing.T) {
	r := newRotation(t)
	evil := newChainCA(t)
	// An etcd writer replaced east's record with a chain of its own that
	// includes east's CA, to have east extend it.
	forged, err := certs.NextSignedBundle(nil, "east", chainTD, evil, []*x509.Certificate{evil.Cert, r.new.Cert}, 1<<40)
	require.NoError(t, err)
	require.Nil(t, certs.TrimBundleHistory(forged, []*x509.Certificate{r.new.Cert}))
	require.Len(t, certs.TrimBundleHistory(r.recs[2], []*x509.Certificate{r.new.Cert}).GetChain(), 1)
	require.Len(t, certs.TrimBundleHistory(r.recs[2], []*x509.Certificate{r.old.Cert}).GetChain(), 3)
	next, err := certs.NextSignedBundle(certs.TrimBundleHistory(forged, []*x509.Certificate{r.new.Cert}), "east", chainTD, r.new, []*x509.Certificate{r.new.Cert}, 500)
	require.NoError(t, err)
	require.Len(t, next.GetChain(), 1, "the forged link is not kept")
	// A verifier that trusts step 1 ({old,new}) follows the fresh link.
	got, err := certs.FollowBundle("east", trustedAt(r.recs[1]), next)
	require.NoError(t, err)
	require.Equal(t, []string{certs.Fingerprint(r.new.Cert)}, got.Fingerprints())

	// The genuine history is kept and bounded.
	prev := r.recs[2]
	for i := range 2 * certs.MaxBundleChain {
		ca := newChainCA(t)
		prev, err = certs.NextSignedBundle(prev, "east", chainTD, r.new, []*x509.Certificate{r.new.Cert, ca.Cert}, uint64(i))
		require.NoError(t, err)
		prev, err = certs.NextSignedBundle(prev, "east", chainTD, r.new, []*x509.Certificate{r.new.Cert}, uint64(i))
		require.NoError(t, err)
	}
	require.Len(t, prev.GetChain(), certs.MaxBundleChain)
}

func TestPinBundle(t *testing.T) {
	r := newRotation(t)
	step1, step3 := r.recs[1], r.recs[2]
	evil := newChainCA(t)
	tests := []struct {
		name        string
		rec         *causewayv1.TrustBundle
		fingerprint string
		wantErr     error
		wantFPs     []string
		wantSeq     uint64
	}{
		{"trust on first use", step1, "", nil, []string{certs.Fingerprint(r.old.Cert), certs.Fingerprint(r.new.Cert)}, step1.GetSequence()},
		{"old CA pinned, followed to the head", step3, certs.Fingerprint(r.old.Cert), nil, []string{certs.Fingerprint(r.new.Cert)}, step3.GetSequence()},
		{"new CA pinned", step3, certs.Fingerprint(r.new.Cert), nil, []string{certs.Fingerprint(r.new.Cert)}, step3.GetSequence()},
		{"pin not published", step3, certs.Fingerprint(evil.Cert), certs.ErrPinNotFound, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certs.PinBundle("east", tt.rec, tt.fingerprint)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantFPs, got.Fingerprints())
			require.Equal(t, tt.wantSeq, got.Sequence)
		})
	}
	_, err := certs.PinBundle("east", step1, "md5:abc")
	require.Error(t, err)
}

func TestTrustState(t *testing.T) {
	west, err := certs.NewCA("west.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	r := newRotation(t)
	st := &causewayv1.TrustState{Verifier: "west", Peer: "east", TrustDomain: chainTD, Sequence: 7,
		X509Authorities: [][]byte{r.new.Cert.Raw}, Source: "pin"}
	require.NoError(t, certs.SignTrustState(west, st))
	own := []*x509.Certificate{west.Cert}

	got, err := certs.VerifyTrustState(own, "west", "east", st)
	require.NoError(t, err)
	require.Equal(t, uint64(7), got.Sequence)

	forged := proto.Clone(st).(*causewayv1.TrustState)
	forged.X509Authorities = append(forged.X509Authorities, r.old.Cert.Raw)
	_, err = certs.VerifyTrustState(own, "west", "east", forged)
	require.ErrorIs(t, err, certs.ErrBundleNotChained, "an etcd writer cannot change the state")

	_, err = certs.VerifyTrustState(own, "west", "north", st)
	require.ErrorIs(t, err, certs.ErrBundleMismatch, "a state is bound to its key")

	other, err := certs.NewCA("west.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	_, err = certs.VerifyTrustState([]*x509.Certificate{other.Cert}, "west", "east", st)
	require.True(t, errors.Is(err, certs.ErrBundleNotChained), "signed by a CA the verifier does not hold")
}

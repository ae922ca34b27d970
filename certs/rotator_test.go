package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// scriptedSigner signs with a LocalSigner, except that it fails while fail
// is positive (decrementing it) and records when it was called.
type scriptedSigner struct {
	local *certs.LocalSigner

	mu    sync.Mutex // guards fail, calls, tamper
	fail  int
	calls []time.Time
	// tamper, if set, replaces the chain returned.
	tamper func([][]byte) [][]byte
}

func (s *scriptedSigner) Sign(ctx context.Context, csr []byte) ([][]byte, error) {
	s.mu.Lock()
	s.calls = append(s.calls, time.Now())
	fail, tamper := s.fail > 0, s.tamper
	if fail {
		s.fail--
	}
	s.mu.Unlock()
	if fail {
		return nil, errors.New("signer down")
	}
	chain, err := s.local.Sign(ctx, csr)
	if err == nil && tamper != nil {
		chain = tamper(chain)
	}
	return chain, err
}

func (s *scriptedSigner) callTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls...)
}

func newScriptedSigner(t *testing.T, lifetime time.Duration) (*scriptedSigner, *certs.CA) {
	t.Helper()
	ca, err := certs.NewCA(eastTD, 365*24*time.Hour, time.Now())
	require.NoError(t, err)
	return &scriptedSigner{local: &certs.LocalSigner{CA: ca, Lifetime: lifetime, Authorize: certs.AuthorizeComponents("gateway")}}, ca
}

var gatewayID = certs.ID{TrustDomain: eastTD, Path: "/gateway"}

func TestRotatorRenewsAtTwoThirds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer, ca := newScriptedSigner(t, 3*time.Hour)
		var rotations []*tls.Certificate
		var mu sync.Mutex
		r, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID, Signer: signer, Logger: discard,
			OnRotate: func(c *tls.Certificate) { mu.Lock(); rotations = append(rotations, c); mu.Unlock() }})
		require.NoError(t, err)
		start := time.Now()
		first, err := r.Certificate()
		require.NoError(t, err)
		require.NoError(t, first.Leaf.CheckSignatureFrom(ca.Cert))
		// Two thirds of the lifetime from issuance, not from the backdated NotBefore.
		require.Equal(t, start.Add(2*time.Hour), r.RenewAt())

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		defer cancel()
		go func() { done <- r.Run(ctx) }()

		time.Sleep(2*time.Hour - time.Second)
		synctest.Wait()
		cur, _ := r.Certificate()
		require.Same(t, first, cur, "not renewed before two thirds")

		time.Sleep(2 * time.Second)
		synctest.Wait()
		second, _ := r.Certificate()
		require.NotSame(t, first, second)
		require.NotEqual(t, first.Leaf.SerialNumber, second.Leaf.SerialNumber)
		require.False(t, first.PrivateKey.(*ecdsa.PrivateKey).Equal(second.PrivateKey), "a fresh key")
		require.Equal(t, start.Add(2*time.Hour+2*time.Hour), r.RenewAt())

		// The TLS callbacks serve the current certificate.
		got, err := r.GetCertificate(nil)
		require.NoError(t, err)
		require.Same(t, second, got)
		got, err = r.GetClientCertificate(nil)
		require.NoError(t, err)
		require.Same(t, second, got)

		time.Sleep(2 * time.Hour)
		synctest.Wait()
		require.Len(t, signer.callTimes(), 3)
		mu.Lock()
		require.Len(t, rotations, 3)
		mu.Unlock()

		cancel()
		require.NoError(t, <-done)
	})
}

func TestRotatorRetriesWithJitteredBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer, _ := newScriptedSigner(t, 3*time.Hour)
		r, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID, Signer: signer, Logger: discard,
			RetryMin: time.Second, RetryMax: 8 * time.Second})
		require.NoError(t, err)
		first, _ := r.Certificate()
		renewAt := r.RenewAt()

		signer.mu.Lock()
		signer.fail = 6
		signer.mu.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		defer cancel()
		go func() { done <- r.Run(ctx) }()

		time.Sleep(time.Until(renewAt) + 5*time.Minute)
		synctest.Wait()
		calls := signer.callTimes()
		require.Len(t, calls, 1+7, "first issue, 6 failures, 1 success")
		// Delay before retry n is in [d/2, d] with d = 1s, 2s, 4s, 8s, 8s, 8s.
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
		for i, d := range want {
			gap := calls[i+2].Sub(calls[i+1])
			require.GreaterOrEqual(t, gap, d/2, "retry %d", i+1)
			require.LessOrEqual(t, gap, d, "retry %d", i+1)
		}
		cur, _ := r.Certificate()
		require.NotSame(t, first, cur)
		// Back on schedule after the success.
		require.WithinDuration(t, calls[7].Add(2*time.Hour), r.RenewAt(), time.Second) // NotAfter has whole seconds

		cancel()
		require.NoError(t, <-done)
	})
}

func TestRotatorRetriesBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer, _ := newScriptedSigner(t, 90*time.Second)
		r, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID, Signer: signer, Logger: discard,
			RetryMin: 20 * time.Second, RetryMax: time.Hour})
		require.NoError(t, err)
		first, _ := r.Certificate()
		notAfter := first.Leaf.NotAfter
		signer.mu.Lock()
		signer.fail = 4
		signer.mu.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		defer cancel()
		go func() { done <- r.Run(ctx) }()
		time.Sleep(time.Until(notAfter))
		synctest.Wait()
		calls := signer.callTimes()
		require.Len(t, calls, 1+5, "first issue, 4 failures, 1 success")
		// Every retry comes at most halfway to the expiry of the
		// certificate in use, although back-off alone would wait longer.
		for i := 2; i < len(calls); i++ {
			require.LessOrEqual(t, calls[i].Sub(calls[i-1]), notAfter.Sub(calls[i-1])/2, "retry %d", i-1)
			require.True(t, calls[i].Before(notAfter))
		}
		cur, _ := r.Certificate()
		require.NotSame(t, first, cur)
		cancel()
		require.NoError(t, <-done)
	})
}

func TestRotatorRejectsBadIssuance(t *testing.T) {
	other, err := certs.NewCA(eastTD, time.Hour, time.Now())
	require.NoError(t, err)
	wrongKey, err := other.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	wrongID, err := other.NewLeafKeyPair("dnsshim", time.Hour, time.Now())
	require.NoError(t, err)
	// expiredForKey reissues the requested leaf (same key and ID), expired.
	expiredForKey := func(chain [][]byte) [][]byte {
		leaf, err := x509.ParseCertificate(chain[0])
		require.NoError(t, err)
		c, err := other.IssueLeaf("gateway", leaf.PublicKey, time.Minute, time.Now().Add(-time.Hour))
		require.NoError(t, err)
		return [][]byte{c.Raw}
	}

	tests := []struct {
		name   string
		tamper func([][]byte) [][]byte
		want   string
	}{
		{"empty chain", func([][]byte) [][]byte { return nil }, "empty chain"},
		{"garbage", func([][]byte) [][]byte { return [][]byte{{1, 2}} }, "check issued certificate: x509"},
		{"another key", func([][]byte) [][]byte { return wrongKey.Certificate }, "does not certify the requested key"},
		{"another id", func([][]byte) [][]byte { return wrongID.Certificate }, "asked for spiffe://east.clusterset.local/gateway"},
		{"expired", expiredForKey, "not valid now"},
		{"CA as leaf", func([][]byte) [][]byte { return [][]byte{other.Cert.Raw} }, "invalid SPIFFE ID"},
		{"bad intermediate", func(c [][]byte) [][]byte { return append(c, []byte{3}) }, "intermediate 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				signer, _ := newScriptedSigner(t, time.Hour)
				signer.tamper = tc.tamper
				// One attempt, then a long back-off that the deadline cuts.
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				_, err := certs.NewRotator(ctx, certs.RotatorConfig{ID: gatewayID, Signer: signer, Logger: discard, RetryMin: time.Hour})
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.ErrorContains(t, err, tc.want)
				require.Len(t, signer.callTimes(), 1)
			})
		})
	}
}

func TestNewRotatorValidatesAndWaits(t *testing.T) {
	_, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID})
	require.ErrorContains(t, err, "no signer")
	signer, _ := newScriptedSigner(t, time.Hour)
	_, err = certs.NewRotator(t.Context(), certs.RotatorConfig{Signer: signer})
	require.ErrorIs(t, err, certs.ErrInvalidID)

	synctest.Test(t, func(t *testing.T) {
		signer, _ := newScriptedSigner(t, time.Hour)
		signer.fail = 3
		start := time.Now()
		r, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID, Signer: signer, Logger: discard})
		require.NoError(t, err)
		require.Len(t, signer.callTimes(), 4)
		require.GreaterOrEqual(t, time.Since(start), 3500*time.Millisecond) // 0.5+1+2 at least
		_, err = r.Certificate()
		require.NoError(t, err)
	})

	// The signer's authorizer refuses other components: the rotator keeps
	// asking until its context ends, and reports why.
	synctest.Test(t, func(t *testing.T) {
		signer, _ := newScriptedSigner(t, time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err := certs.NewRotator(ctx, certs.RotatorConfig{ID: certs.ID{TrustDomain: eastTD, Path: "/admin"}, Signer: signer,
			Logger: discard, RetryMin: time.Hour})
		require.ErrorIs(t, err, certs.ErrCSRComponent)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// TestRotatorRenewsWhenIssuerChanges: with Renew following a CA set, a
// CA rotation's switch reissues the certificate from the new CA at once,
// long before 2/3 of its lifetime.
func TestRotatorRenewsWhenIssuerChanges(t *testing.T) {
	td := "east.clusterset.local"
	oldCA, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	newCA, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	set, err := certs.NewCASet(oldCA, nil)
	require.NoError(t, err)
	id, err := certs.NewID(td, "federator")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := certs.NewRotator(ctx, certs.RotatorConfig{ID: id, Signer: &certs.LocalSigner{CA: set, Lifetime: 24 * time.Hour}, Renew: set.Changed})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	issuer := func() string {
		c, err := r.Certificate()
		require.NoError(t, err)
		return string(c.Leaf.AuthorityKeyId)
	}
	require.Equal(t, string(oldCA.Cert.SubjectKeyId), issuer())
	require.NoError(t, set.Update(newCA, []*x509.Certificate{oldCA.Cert, newCA.Cert}))
	require.Eventually(t, func() bool { return issuer() == string(newCA.Cert.SubjectKeyId) }, 5*time.Second, 10*time.Millisecond,
		"the certificate was not reissued by the new CA")
	cancel()
	require.NoError(t, <-done)
}

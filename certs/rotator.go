package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/logbackoff"
)

// Signer turns a certificate request into a certificate: the local CA in
// dev (LocalSigner), the federator's Certs.Sign API elsewhere (SignClient).
type Signer interface {
	// Sign returns the certificate chain (leaf first, DER) issued for the
	// DER PKCS#10 request csr.
	Sign(ctx context.Context, csr []byte) ([][]byte, error)
}

// RotatorConfig configures a Rotator. Only ID and Signer are required.
type RotatorConfig struct {
	// ID is the SPIFFE ID to obtain certificates for. Required.
	ID ID
	// Signer issues the certificates. Required.
	Signer Signer
	// RetryMin is the first delay after a failed renewal; it doubles with
	// every further failure up to RetryMax, each delay jittered down by up
	// to half. It is also the least time between two renewals. If zero,
	// defaults to 1s.
	RetryMin time.Duration
	// RetryMax caps the retry delay. If zero, defaults to 30s.
	RetryMax time.Duration
	// SignTimeout bounds one Signer call. If zero, defaults to 10s.
	SignTimeout time.Duration
	// Logger receives one line per renewal and per failure. If nil,
	// slog.Default().
	Logger *slog.Logger
	// Renew, if set, returns a channel that is closed when the certificate
	// should be renewed at once rather than at 2/3 of its lifetime (called
	// again after each renewal): the federator's own certificate follows
	// its CA set this way, so a CA rotation reissues it.
	Renew func() <-chan struct{}
	// Diagnose, if set, explains a failed request for a certificate: a
	// non-empty hint marks the error as permanent, one that retrying does
	// not fix until the operator changes something (a rejected token, a CA
	// file that does not verify the signer). Such errors are logged at
	// ERROR with the hint; every failure is logged the first time and then
	// with back-off, not at every retry.
	Diagnose func(error) (hint string)
	// OnRotate, if set, is called with every new certificate after it is
	// in place, from the goroutine that obtained it. For logging, metrics,
	// and consumers that cannot read from a Source; it must not block.
	OnRotate func(*tls.Certificate)
}

func (c RotatorConfig) withDefaults() RotatorConfig {
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.SignTimeout <= 0 {
		c.SignTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Rotator is a Source whose certificate renews itself: a fresh ECDSA P-256
// key and a certificate from the Signer at two thirds of each
// certificate's lifetime. The swap is atomic and affects only handshakes
// that start afterwards; established connections (TLS or QUIC) keep the
// keys they negotiated and are never touched. Create it with NewRotator,
// then call Run.
type Rotator struct {
	cfg     RotatorConfig
	log     *slog.Logger
	current atomic.Pointer[rotated]
	renewCh <-chan struct{} // cfg.Renew's channel as of the last renewal; used by Run's goroutine only
}

// rotated is one certificate with the bookkeeping of its renewal.
type rotated struct {
	cert     *tls.Certificate
	obtained time.Time // local time the Signer answered
	renewAt  time.Time
}

var _ Source = (*Rotator)(nil)

// renewFraction is the part of a certificate's lifetime after which it is
// renewed.
const renewFraction = 2.0 / 3.0

// NewRotator obtains the first certificate, retrying failures as Run would,
// and returns once it has one, or when ctx ends (with ctx's error wrapped).
func NewRotator(ctx context.Context, cfg RotatorConfig) (*Rotator, error) {
	if cfg.Signer == nil {
		return nil, errors.New("new rotator: no signer")
	}
	if _, err := ParseID(cfg.ID.String()); err != nil {
		return nil, fmt.Errorf("new rotator: %w", err)
	}
	cfg = cfg.withDefaults()
	r := &Rotator{cfg: cfg, log: cfg.Logger.With("id", cfg.ID.String())}
	delay := cfg.RetryMin
	var lim logbackoff.Limiter
	for {
		err := r.renew(ctx)
		if err == nil {
			return r, nil
		}
		if ctx.Err() == nil {
			r.logFailure(&lim, "obtain first certificate failed; retrying", err)
		}
		if !sleepCtx(ctx, jitter(delay)) {
			return nil, fmt.Errorf("new rotator for %s: %w (last error: %w)", cfg.ID, ctx.Err(), err)
		}
		delay = min(2*delay, cfg.RetryMax)
	}
}

// Run renews the certificate at two thirds of its lifetime until ctx ends,
// retrying failures with jittered exponential back-off, never later than
// halfway to the current certificate's expiry. It returns nil when ctx ends.
// Call it once.
func (r *Rotator) Run(ctx context.Context) error {
	failures := 0
	var delay time.Duration // the last retry delay, before jitter; 0 after a success
	for {
		cur := r.current.Load()
		var wait time.Duration
		if failures == 0 {
			wait = time.Until(cur.renewAt)
		} else {
			delay = r.nextRetryDelay(delay, cur.cert.Leaf.NotAfter)
			wait = jitter(delay)
		}
		if !r.wait(ctx, wait) {
			return nil
		}
		if err := r.renew(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			left := time.Until(cur.cert.Leaf.NotAfter)
			if left <= 0 {
				r.log.Error("renew certificate failed; the current one has expired", "err", err, "failures", failures)
			} else {
				r.log.Warn("renew certificate failed; retrying", "err", err, "failures", failures, "expires_in", left.Round(time.Millisecond))
			}
			continue
		}
		failures, delay = 0, 0
	}
}

// logFailure logs a failed request for a certificate through lim: a
// permanent error (Diagnose gives a hint) at ERROR with its hint.
func (r *Rotator) logFailure(lim *logbackoff.Limiter, msg string, err error, args ...any) {
	var hint string
	if r.cfg.Diagnose != nil {
		hint = r.cfg.Diagnose(err)
	}
	ok, failures, suppressed := lim.Failure(hint)
	if !ok {
		return
	}
	args = append(args, "err", err, "failures", failures, "not_logged", suppressed)
	if hint != "" {
		r.log.Error(msg+" (retrying will not help until this is fixed)", append(args, "hint", hint)...)
		return
	}
	r.log.Warn(msg, args...)
}

// wait waits d, or less when cfg.Renew asks for a renewal; false when
// ctx ended.
func (r *Rotator) wait(ctx context.Context, d time.Duration) bool {
	if r.cfg.Renew == nil {
		return sleepCtx(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-r.renewCh:
		r.log.Info("renewing certificate early: its issuer changed")
	}
	return true
}

// nextRetryDelay is the delay (before jitter) of the retry after one of
// prev (0: the first retry): RetryMin, then doubled up to RetryMax, but at
// most half the time left before notAfter (not below 10ms). The doubling
// goes on from the delay actually used, so the quick retries just before
// an expiry do not turn into a RetryMax wait once the certificate has
// expired.
func (r *Rotator) nextRetryDelay(prev time.Duration, notAfter time.Time) time.Duration {
	d := r.cfg.RetryMin
	if prev > 0 {
		d = min(2*prev, r.cfg.RetryMax)
	}
	if half := time.Until(notAfter) / 2; half > 0 && d > half {
		d = max(half, 10*time.Millisecond)
	}
	return d
}

// Certificate returns the current certificate.
func (r *Rotator) Certificate() (*tls.Certificate, error) {
	cur := r.current.Load()
	if cur == nil {
		return nil, errors.New("get certificate: rotator has no certificate")
	}
	return cur.cert, nil
}

// GetCertificate is a tls.Config.GetCertificate callback serving the
// current certificate.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate()
}

// GetClientCertificate is a tls.Config.GetClientCertificate callback
// serving the current certificate.
func (r *Rotator) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate()
}

// RenewAt returns when the current certificate is due for renewal.
func (r *Rotator) RenewAt() time.Time { return r.current.Load().renewAt }

// NotAfter returns when the current certificate expires.
func (r *Rotator) NotAfter() time.Time { return r.current.Load().cert.Leaf.NotAfter }

// renew obtains a new certificate and puts it in place.
func (r *Rotator) renew(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("renew %s: generate key: %w", r.cfg.ID, err)
	}
	csr, err := NewCSR(key, r.cfg.ID)
	if err != nil {
		return fmt.Errorf("renew %s: %w", r.cfg.ID, err)
	}
	// Taken before signing: a change of issuer from now on, even one that
	// races this signature, makes the next wait end at once.
	var renewCh <-chan struct{}
	if r.cfg.Renew != nil {
		renewCh = r.cfg.Renew()
	}
	sctx, cancel := context.WithTimeout(ctx, r.cfg.SignTimeout)
	chain, err := r.cfg.Signer.Sign(sctx, csr)
	cancel()
	if err != nil {
		return fmt.Errorf("renew %s: sign: %w", r.cfg.ID, err)
	}
	now := time.Now()
	cert, err := checkIssued(chain, key, r.cfg.ID, now)
	if err != nil {
		return fmt.Errorf("renew %s: %w", r.cfg.ID, err)
	}
	// Never renew sooner than RetryMin from now, so a leaf capped by a CA
	// about to expire cannot make renewals spin.
	renewAt := renewTime(now, cert.Leaf.NotAfter)
	if floor := now.Add(r.cfg.RetryMin); renewAt.Before(floor) {
		renewAt = floor
	}
	next := &rotated{cert: cert, obtained: now, renewAt: renewAt}
	r.renewCh = renewCh
	prev := r.current.Swap(next)
	args := []any{"serial", SerialHex(cert.Leaf), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"renew_in", next.renewAt.Sub(now).Round(time.Millisecond)}
	if prev != nil {
		args = append(args, "previous_serial", SerialHex(prev.cert.Leaf))
	}
	r.log.Info("certificate renewed", args...)
	if r.cfg.OnRotate != nil {
		r.cfg.OnRotate(cert)
	}
	return nil
}

// renewTime is two thirds of the way from obtained to notAfter. The
// lifetime is measured from when the certificate was obtained, not from
// NotBefore, which issuers backdate for clock skew.
func renewTime(obtained, notAfter time.Time) time.Time {
	return obtained.Add(time.Duration(float64(notAfter.Sub(obtained)) * renewFraction))
}

// checkIssued validates what a Signer returned for key and id and makes a
// tls.Certificate of it: the leaf must parse, carry exactly id, certify
// key's public key, not be a CA, and be valid at now.
func checkIssued(chain [][]byte, key *ecdsa.PrivateKey, id ID, now time.Time) (*tls.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("check issued certificate: empty chain")
	}
	if len(chain) > maxChainLength {
		return nil, fmt.Errorf("check issued certificate: chain of %d certificates exceeds %d", len(chain), maxChainLength)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("check issued certificate: %w", err)
	}
	got, err := IDFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("check issued certificate: %w", err)
	}
	switch {
	case got != id:
		return nil, fmt.Errorf("check issued certificate: carries %s, asked for %s", got, id)
	case leaf.IsCA:
		return nil, errors.New("check issued certificate: leaf is a CA")
	case !key.PublicKey.Equal(leaf.PublicKey):
		return nil, errors.New("check issued certificate: does not certify the requested key")
	case now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter):
		return nil, fmt.Errorf("check issued certificate: not valid now (%s to %s)",
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for i, raw := range chain[1:] {
		if _, err := x509.ParseCertificate(raw); err != nil {
			return nil, fmt.Errorf("check issued certificate: intermediate %d: %w", i+1, err)
		}
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// LocalSigner is a Signer backed by a CA in this process: dev mode, tests,
// and the federator's own certificates.
type LocalSigner struct {
	// CA signs; a *CA or a *CASet (which follows CA rotations). Required.
	CA CASource
	// Lifetime of issued leaves. If zero, defaults to DefaultLeafLifetime.
	Lifetime time.Duration
	// Authorize, if set, decides which requested IDs may be issued.
	Authorize Authorizer
}

var _ Signer = (*LocalSigner)(nil)

// DefaultLeafLifetime is the lifetime of leaves when none is configured.
const DefaultLeafLifetime = 24 * time.Hour

// Sign implements Signer with IssueFromCSR.
func (s *LocalSigner) Sign(ctx context.Context, csr []byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	lifetime := s.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultLeafLifetime
	}
	leaf, err := IssueFromCSR(s.CA, csr, lifetime, time.Now(), s.Authorize)
	if err != nil {
		return nil, err
	}
	return [][]byte{leaf.Raw}, nil
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1))
	if err != nil {
		return d
	}
	return d/2 + time.Duration(n.Int64())
}

// sleepCtx waits for d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// CASource supplies the CA that signs new leaves of one trust domain. A *CA
// is a CASource that never changes; a *CASet changes during a CA rotation.
type CASource interface {
	// SigningCA returns the CA to sign with now.
	SigningCA() (*CA, error)
}

var (
	_ CASource = (*CA)(nil)
	_ CASource = (*CASet)(nil)
)

// SigningCA returns ca itself, or an error if it cannot sign.
func (ca *CA) SigningCA() (*CA, error) {
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("signing ca: %w", err)
	}
	return ca, nil
}

// CASet is the authority state of one trust domain during its whole life,
// including CA rotations: the CA that signs new leaves, and the bundle of
// every CA certificate peers must trust (the signing CA plus, during a
// rotation, the CA being introduced or retired). It is safe for concurrent
// use. Create it with NewCASet.
//
// A CA rotation is three calls to Update (see docs/certificates.md):
//
//  1. Update(old, [old, new]): publish the new CA next to the old one;
//  2. Update(new, [old, new]): sign with the new CA, leaves get reissued;
//  3. Update(new, [new]): drop the old CA once its leaves have expired.
type CASet struct {
	mu      sync.RWMutex // guards signing, bundle, changed
	signing *CA
	bundle  []*x509.Certificate
	changed chan struct{} // closed and replaced by every Update that changes something
}

// NewCASet returns a CASet signing with signing and trusting bundle (which
// must contain signing's certificate; nil means just that certificate).
func NewCASet(signing *CA, bundle []*x509.Certificate) (*CASet, error) {
	s := &CASet{changed: make(chan struct{})}
	if err := s.Update(signing, bundle); err != nil {
		return nil, err
	}
	return s, nil
}

// Update replaces the signing CA and the bundle. The signing CA must be
// usable, of the same trust domain as before, and its certificate must be
// in bundle (nil bundle means just the signing certificate); every bundle
// certificate must be a CA naming the same trust domain. On error nothing
// changes.
func (s *CASet) Update(signing *CA, bundle []*x509.Certificate) error {
	if err := signing.check(); err != nil {
		return fmt.Errorf("update ca set: %w", err)
	}
	if bundle == nil {
		bundle = []*x509.Certificate{signing.Cert}
	}
	bundle = dedupeCerts(bundle)
	if !slices.ContainsFunc(bundle, signing.Cert.Equal) {
		return fmt.Errorf("update ca set of %s: signing CA %s is not in the bundle", signing.TrustDomain, SerialHex(signing.Cert))
	}
	for _, c := range bundle {
		td, err := TrustDomainOfCA(c)
		if err != nil {
			return fmt.Errorf("update ca set of %s: bundle CA %s: %w", signing.TrustDomain, SerialHex(c), err)
		}
		if td != signing.TrustDomain {
			return fmt.Errorf("update ca set of %s: bundle CA %s is of trust domain %s", signing.TrustDomain, SerialHex(c), td)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signing != nil && s.signing.TrustDomain != signing.TrustDomain {
		return fmt.Errorf("update ca set of %s: new signing CA is of trust domain %s", s.signing.TrustDomain, signing.TrustDomain)
	}
	if s.signing != nil && s.signing.Cert.Equal(signing.Cert) && slices.EqualFunc(s.bundle, bundle, (*x509.Certificate).Equal) {
		return nil
	}
	s.signing, s.bundle = signing, bundle
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
	return nil
}

// SigningCA returns the CA that signs new leaves.
func (s *CASet) SigningCA() (*CA, error) {
	if s == nil {
		return nil, errors.New("signing ca: nil ca set")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.signing == nil {
		return nil, errors.New("signing ca: empty ca set")
	}
	return s.signing, nil
}

// TrustDomain returns the trust domain of the set.
func (s *CASet) TrustDomain() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.signing == nil {
		return ""
	}
	return s.signing.TrustDomain
}

// Authorities returns a copy of the bundle: every CA certificate peers must
// trust for this trust domain, in the order given to Update.
func (s *CASet) Authorities() []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.bundle)
}

// Changed returns a channel closed by the next Update that changes the
// signing CA or the bundle. Read it before the state it guards.
func (s *CASet) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Bundle implements BundleSource for the set's own trust domain.
func (s *CASet) Bundle(trustDomain string) ([]*x509.Certificate, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.signing == nil || trustDomain != s.signing.TrustDomain {
		return nil, false
	}
	return slices.Clone(s.bundle), true
}

// IssueFromCSR checks a DER certificate request with CheckCSR against the
// trust domain of ca's signing CA, asks authorize (if not nil) whether the
// requested ID may be issued, and then issues it for lifetime from now. The
// requested ID must name a component (a one-segment path), else the error
// wraps ErrCSRComponent; authorize's error is wrapped as is.
func IssueFromCSR(ca CASource, der []byte, lifetime time.Duration, now time.Time, authorize Authorizer) (*x509.Certificate, error) {
	signing, err := ca.SigningCA()
	if err != nil {
		return nil, fmt.Errorf("issue from csr: %w", err)
	}
	csr, id, err := CheckCSR(der, signing.TrustDomain)
	if err != nil {
		return nil, err
	}
	component, ok := id.Component()
	if !ok {
		return nil, fmt.Errorf("issue from csr: %s does not name a component: %w", id, ErrCSRComponent)
	}
	if authorize != nil {
		if err := authorize(id); err != nil {
			return nil, fmt.Errorf("issue from csr: %w", err)
		}
	}
	leaf, err := signing.IssueLeaf(component, csr.PublicKey, lifetime, now)
	if err != nil {
		return nil, fmt.Errorf("issue from csr: %w", err)
	}
	return leaf, nil
}

// AuthorizeComponents allows IDs naming one of components; others get an
// error wrapping ErrCSRComponent.
func AuthorizeComponents(components ...string) Authorizer {
	allowed := slices.Clone(components)
	return func(id ID) error {
		c, ok := id.Component()
		if !ok || !slices.Contains(allowed, c) {
			return fmt.Errorf("check component of %s: not one of %q: %w", id, allowed, ErrCSRComponent)
		}
		return nil
	}
}

// TrustDomainOfCA returns the trust domain a CA certificate names with its
// only URI SAN, "spiffe://<trust-domain>". Errors wrap ErrInvalidID.
func TrustDomainOfCA(c *x509.Certificate) (string, error) {
	if c == nil {
		return "", fmt.Errorf("read ca trust domain: nil certificate: %w", ErrInvalidID)
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		return "", fmt.Errorf("read ca trust domain: certificate %s is not a CA: %w", SerialHex(c), ErrInvalidID)
	}
	return trustDomainFromCA(c)
}

// SerialHex formats a certificate's serial number as colon-free lowercase
// hex, the way the CLI and logs print it.
func SerialHex(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return "<none>"
	}
	return c.SerialNumber.Text(16)
}

// dedupeCerts drops nil and repeated certificates, keeping the first.
func dedupeCerts(in []*x509.Certificate) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(in))
	for _, c := range in {
		if c != nil && !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
	}
	return out
}

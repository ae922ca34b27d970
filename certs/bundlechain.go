package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// MaxBundleChain is how many links a published trust bundle carries: a
// verifier that missed more rotation steps than this must be re-pinned.
const MaxBundleChain = 8

// Errors of bundle chain verification.
var (
	// ErrBundleNotChained: the published bundle is not signed by a CA the
	// verifier trusts, directly or through the links of its chain (a CA
	// added by someone without the cluster's CA key, a CA replaced without
	// a signed rotation, or a verifier that missed more than MaxBundleChain
	// steps). The operator must pin it (causeway clusters trust).
	ErrBundleNotChained = errors.New("certs: trust bundle is not signed by a trusted CA of its cluster")
	// ErrBundleRollback: the published bundle is older than the trusted one.
	ErrBundleRollback = errors.New("certs: trust bundle is older than the trusted one")
	// ErrPinNotFound: no published CA has the pinned fingerprint.
	ErrPinNotFound = errors.New("certs: no published CA has the pinned fingerprint")
)

// TrustedBundle is the version of a peer's trust bundle a verifier
// accepts: a link of the peer's chain.
type TrustedBundle struct {
	TrustDomain string
	Sequence    uint64
	Authorities []*x509.Certificate
}

// IsZero reports whether nothing is trusted.
func (t TrustedBundle) IsZero() bool { return len(t.Authorities) == 0 }

// Fingerprints returns the fingerprints of the authorities, in order.
func (t TrustedBundle) Fingerprints() []string {
	out := make([]string, len(t.Authorities))
	for i, c := range t.Authorities {
		out[i] = Fingerprint(c)
	}
	return out
}

// Fingerprint is "sha256:<hex>" of a certificate's DER encoding: how
// operators pin a cluster's CA out of band.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint normalises a fingerprint ("sha256:" and 64 hex digits,
// case and colons ignored) or reports what is wrong with it.
func ParseFingerprint(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok {
		return "", fmt.Errorf("parse fingerprint %q: want sha256:<64 hex digits>", s)
	}
	h = strings.ReplaceAll(h, ":", "")
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("parse fingerprint %q: want sha256:<64 hex digits>", s)
	}
	return "sha256:" + h, nil
}

// bundleLinkDigest is the SHA-256 of the canonical encoding of one bundle
// version: a domain-separation tag, then cluster, trust domain, sequence
// and every authority, each length-prefixed.
func bundleLinkDigest(tag, cluster, td string, seq uint64, authorities [][]byte) []byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(tag))
	field([]byte(cluster))
	field([]byte(td))
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	h.Write(s[:])
	binary.BigEndian.PutUint32(s[:4], uint32(len(authorities)))
	h.Write(s[:4])
	for _, a := range authorities {
		field(a)
	}
	return h.Sum(nil)
}

const (
	linkTag  = "causeway/bundle-link/v1"
	stateTag = "causeway/trust-state/v1"
)

// signDigest signs digest with ca's key; it returns the signer (the SHA-256
// of ca's certificate) and the signature.
func signDigest(ca *CA, digest []byte) (signer, sig []byte, err error) {
	if err := ca.check(); err != nil {
		return nil, nil, err
	}
	sig, err = ecdsa.SignASN1(rand.Reader, ca.Key, digest)
	if err != nil {
		return nil, nil, fmt.Errorf("sign with ca %s: %w", SerialHex(ca.Cert), err)
	}
	sum := sha256.Sum256(ca.Cert.Raw)
	return sum[:], sig, nil
}

// verifyDigest reports whether sig is a signature of digest by the key of
// the certificate in trusted whose SHA-256 is signer.
func verifyDigest(trusted []*x509.Certificate, signer, sig, digest []byte) bool {
	for _, c := range trusted {
		sum := sha256.Sum256(c.Raw)
		if !slices.Equal(sum[:], signer) {
			continue
		}
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		return ok && ecdsa.VerifyASN1(pub, digest, sig)
	}
	return false
}

// SignBundleLink returns the link of one bundle version signed by ca.
func SignBundleLink(ca *CA, cluster, td string, seq uint64, authorities []*x509.Certificate) (*causewayv1.BundleLink, error) {
	der := AuthoritiesDER(authorities)
	signer, sig, err := signDigest(ca, bundleLinkDigest(linkTag, cluster, td, seq, der))
	if err != nil {
		return nil, fmt.Errorf("sign bundle link of %s: %w", cluster, err)
	}
	return &causewayv1.BundleLink{Sequence: seq, X509Authorities: der, Signer: signer, Signature: sig}, nil
}

// NextSignedBundle returns the trust bundle record a cluster publishes for
// authorities, signed by signing (which must be one of them), extending
// the chain of prev (the record now in etcd, possibly forged or nil). The
// history of prev is kept only where it is a valid chain (every link
// signed by a CA of the link before it, the first by one of its own) whose
// newest link holds the signing CA, so nothing an etcd writer added
// survives; otherwise the chain starts afresh with a link signed by
// signing, which peers follow only if they trust signing. seq is a
// suggestion (a clock): the result's sequence is above every link kept.
func NextSignedBundle(prev *causewayv1.TrustBundle, cluster, td string, signing *CA, authorities []*x509.Certificate, seq uint64) (*causewayv1.TrustBundle, error) {
	authorities = dedupeCerts(authorities)
	if !slices.ContainsFunc(authorities, signing.Cert.Equal) {
		return nil, fmt.Errorf("sign bundle of %s: signing CA %s is not in the bundle", cluster, SerialHex(signing.Cert))
	}
	var chain []*causewayv1.BundleLink
	if prev.GetCluster() == cluster && prev.GetTrustDomain() == td {
		chain = validPrefix(cluster, td, prev.GetChain())
	}
	if n := len(chain); n > 0 {
		head, _ := ParseAuthorities(chain[n-1].GetX509Authorities())
		if !slices.ContainsFunc(head, signing.Cert.Equal) {
			chain = nil
		} else if sameCertSet(head, authorities) {
			return bundleOf(cluster, td, chain), nil // unchanged: republish as is
		}
	}
	if n := len(chain); n > 0 {
		seq = max(seq, chain[n-1].GetSequence()+1)
	}
	seq = max(seq, 1)
	link, err := SignBundleLink(signing, cluster, td, seq, authorities)
	if err != nil {
		return nil, err
	}
	chain = append(chain, link)
	if len(chain) > MaxBundleChain {
		chain = chain[len(chain)-MaxBundleChain:]
	}
	return bundleOf(cluster, td, chain), nil
}

func bundleOf(cluster, td string, chain []*causewayv1.BundleLink) *causewayv1.TrustBundle {
	head := chain[len(chain)-1]
	return &causewayv1.TrustBundle{Cluster: cluster, TrustDomain: td, Sequence: head.GetSequence(),
		X509Authorities: head.GetX509Authorities(), Chain: slices.Clone(chain)}
}

// TrimBundleHistory returns rec with its chain cut to the valid links
// from the first one signed by a CA of known (the publisher's own CAs, from
// its local CA directory) on: what a federator may extend when it did not
// publish rec itself (at start, rec is what etcd holds, which anyone with
// etcd write access may have replaced). It returns nil when nothing is
// left.
func TrimBundleHistory(rec *causewayv1.TrustBundle, known []*x509.Certificate) *causewayv1.TrustBundle {
	chain := validPrefix(rec.GetCluster(), rec.GetTrustDomain(), rec.GetChain())
	for i, l := range chain {
		if !slices.ContainsFunc(known, func(c *x509.Certificate) bool {
			sum := sha256.Sum256(c.Raw)
			return slices.Equal(sum[:], l.GetSigner())
		}) {
			continue
		}
		return bundleOf(rec.GetCluster(), rec.GetTrustDomain(), chain[i:])
	}
	return nil
}

// validPrefix returns the longest prefix of chain in which the first link
// is signed by one of its own CAs and every later link, with a higher
// sequence, by a CA of the link before it.
func validPrefix(cluster, td string, chain []*causewayv1.BundleLink) []*causewayv1.BundleLink {
	var out []*causewayv1.BundleLink
	var prev []*x509.Certificate
	for _, l := range chain {
		cas, err := linkAuthorities(td, l)
		if err != nil {
			break
		}
		if prev == nil {
			prev = cas
		} else if l.GetSequence() <= out[len(out)-1].GetSequence() {
			break
		}
		if !verifyDigest(prev, l.GetSigner(), l.GetSignature(), bundleLinkDigest(linkTag, cluster, td, l.GetSequence(), l.GetX509Authorities())) {
			break
		}
		out, prev = append(out, l), cas
	}
	return out
}

// linkAuthorities parses a link's CAs, each of which must name td.
func linkAuthorities(td string, l *causewayv1.BundleLink) ([]*x509.Certificate, error) {
	cas, err := ParseAuthorities(l.GetX509Authorities())
	if err != nil {
		return nil, err
	}
	if len(cas) == 0 {
		return nil, errors.New("no authority")
	}
	for _, c := range cas {
		if got, err := TrustDomainOfCA(c); err != nil || got != td {
			return nil, fmt.Errorf("CA %s does not name trust domain %s: %w", SerialHex(c), td, ErrBundleMismatch)
		}
	}
	return cas, nil
}

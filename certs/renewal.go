package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Renewal proof: a component renewing its certificate proves that it holds
// a still-valid leaf of the identity it asks for, so the federator can
// tell a renewal from a first issuance (which uses up a join token's uses)
// without a client certificate on the bootstrap connection. The proof
// travels as gRPC metadata next to the bearer token:
//
//	causeway-renew-leaf-bin:  the current leaf (DER)
//	causeway-renew-proof-bin: the current key's ECDSA signature (ASN.1) of
//	                          SHA-256(RenewalProofContext || CSR DER)
//
// The signature covers the CSR, so a proof cannot be replayed for another
// key; replaying it for the same CSR obtains a certificate for a key only
// the component holds.
const (
	RenewLeafHeader  = "causeway-renew-leaf-bin"
	RenewProofHeader = "causeway-renew-proof-bin"
	// RenewalProofContext separates renewal proofs from any other use of
	// a leaf's key.
	RenewalProofContext = "causeway renewal proof v1\x00"
)

// ErrRenewalProof: the renewal proof is malformed, its leaf does not
// verify or its signature does not match.
var ErrRenewalProof = errors.New("certs: renewal proof rejected")

func renewalDigest(csr []byte) []byte {
	h := sha256.New()
	h.Write([]byte(RenewalProofContext))
	h.Write(csr)
	return h.Sum(nil)
}

// RenewalProof signs csr with cert's key and returns the leaf and the
// proof to send, or ok false when cert is nil, has no key that can sign,
// or has expired at now (a first issuance then).
func RenewalProof(cert *tls.Certificate, csr []byte, now time.Time) (leaf, proof []byte, ok bool) {
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, nil, false
	}
	signer, isSigner := cert.PrivateKey.(crypto.Signer)
	if !isSigner {
		return nil, nil, false
	}
	l := cert.Leaf
	if l == nil {
		var err error
		if l, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil, false
		}
	}
	if !now.Before(l.NotAfter) {
		return nil, nil, false
	}
	sig, err := signer.Sign(rand.Reader, renewalDigest(csr), crypto.SHA256)
	if err != nil {
		return nil, nil, false
	}
	return cert.Certificate[0], sig, true
}

// VerifyRenewalProof verifies a renewal proof for csr: leaf must verify
// against bundles at now (VerifyChain) and proof must be its key's
// signature of csr. It returns the leaf's ID; errors wrap ErrRenewalProof.
func VerifyRenewalProof(leaf, proof, csr []byte, bundles BundleSource, now time.Time) (ID, error) {
	id, cert, err := VerifyChain([][]byte{leaf}, bundles, now)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrRenewalProof, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return ID{}, fmt.Errorf("%w: leaf key is not ECDSA", ErrRenewalProof)
	}
	if !ecdsa.VerifyASN1(pub, renewalDigest(csr), proof) {
		return ID{}, fmt.Errorf("%w: signature of %s does not match the request", ErrRenewalProof, id)
	}
	return id, nil
}

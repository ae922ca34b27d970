package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxCSRSize is the largest DER certificate request CheckCSR accepts. A
// Causeway CSR (one P-256 key, one SPIFFE URI) is about 300 bytes.
const MaxCSRSize = 16 << 10

// Errors of CheckCSR. Every error it returns wraps exactly one of the
// specific errors below, and through it either ErrCSRInvalid (the request is
// unacceptable as such: map to INVALID_ARGUMENT) or ErrCSRForbidden (it is
// well-formed but names an identity the signer does not issue: map to
// PERMISSION_DENIED).
var (
	// ErrCSRInvalid is wrapped by every error about a malformed request.
	ErrCSRInvalid = errors.New("certs: invalid certificate request")
	// ErrCSRForbidden is wrapped by every error about an identity the
	// signer may not issue.
	ErrCSRForbidden = errors.New("certs: certificate request for a forbidden identity")

	// ErrCSRTooLarge: the request exceeds MaxCSRSize.
	ErrCSRTooLarge = fmt.Errorf("%w: larger than %d bytes", ErrCSRInvalid, MaxCSRSize)
	// ErrCSRMalformed: the request is empty or does not parse as PKCS#10.
	ErrCSRMalformed = fmt.Errorf("%w: malformed", ErrCSRInvalid)
	// ErrCSRKey: the public key is not ECDSA P-256, the only key type
	// Causeway issues certificates for.
	ErrCSRKey = fmt.Errorf("%w: public key is not ECDSA P-256", ErrCSRInvalid)
	// ErrCSRSignature: the request's self-signature does not verify.
	ErrCSRSignature = fmt.Errorf("%w: bad signature", ErrCSRInvalid)
	// ErrCSRNames: the request's subject alternative names are not exactly
	// one valid SPIFFE URI (DNS names, IP addresses, e-mail addresses,
	// other URIs and other name forms are refused).
	ErrCSRNames = fmt.Errorf("%w: subject alternative names must be exactly one SPIFFE ID", ErrCSRInvalid)
	// ErrCSRExtension: the request asks for an extension other than
	// subjectAltName.
	ErrCSRExtension = fmt.Errorf("%w: requested extension not allowed", ErrCSRInvalid)
	// ErrCSRForeignTrustDomain: the SPIFFE ID belongs to another trust
	// domain (another cluster) than the signer's.
	ErrCSRForeignTrustDomain = fmt.Errorf("%w: identity of another trust domain", ErrCSRForbidden)
	// ErrCSRComponent: the SPIFFE ID's path is not an allowed component.
	ErrCSRComponent = fmt.Errorf("%w: component not allowed", ErrCSRForbidden)
)

// oidSubjectAltName is the object identifier of the subjectAltName extension.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// generalNameURI is the context-specific tag of a uniformResourceIdentifier
// GeneralName (RFC 5280, 4.2.1.6).
const generalNameURI = 6

// NewCSR returns a DER PKCS#10 request for id, signed by key, carrying id as
// its only subject alternative name and nothing else.
func NewCSR(key *ecdsa.PrivateKey, id ID) ([]byte, error) {
	if key == nil {
		return nil, errors.New("create csr: nil key")
	}
	if _, err := ParseID(id.String()); err != nil {
		return nil, fmt.Errorf("create csr: %w", err)
	}
	tmpl := &x509.CertificateRequest{
		URIs: []*url.URL{{Scheme: "spiffe", Host: id.TrustDomain, Path: id.Path}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create csr for %s: %w", id, err)
	}
	return der, nil
}

// CheckCSR parses and checks a DER certificate request for a leaf of
// trustDomain, and returns it with the SPIFFE ID it asks for. The request
// must be at most MaxCSRSize bytes, parse strictly, carry an ECDSA P-256
// key, verify its own signature, request no extension but subjectAltName,
// and name exactly one subject alternative name: a SPIFFE ID of trustDomain.
// The subject is ignored (issued leaves never copy it). Errors wrap the
// specific ErrCSR* sentinels and ErrCSRInvalid or ErrCSRForbidden.
func CheckCSR(der []byte, trustDomain string) (*x509.CertificateRequest, ID, error) {
	switch {
	case len(der) == 0:
		return nil, ID{}, fmt.Errorf("check csr: empty request: %w", ErrCSRMalformed)
	case len(der) > MaxCSRSize:
		return nil, ID{}, fmt.Errorf("check csr: %d bytes: %w", len(der), ErrCSRTooLarge)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, ID{}, fmt.Errorf("check csr: %w: %v", ErrCSRMalformed, err)
	}
	if err := checkCSRKey(csr); err != nil {
		return nil, ID{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, ID{}, fmt.Errorf("check csr: %w: %v", ErrCSRSignature, err)
	}
	if err := checkCSRExtensions(csr); err != nil {
		return nil, ID{}, err
	}
	if len(csr.DNSNames) > 0 || len(csr.EmailAddresses) > 0 || len(csr.IPAddresses) > 0 || len(csr.URIs) != 1 || csr.URIs[0] == nil {
		return nil, ID{}, fmt.Errorf("check csr: %d DNS, %d e-mail, %d IP, %d URI names: %w",
			len(csr.DNSNames), len(csr.EmailAddresses), len(csr.IPAddresses), len(csr.URIs), ErrCSRNames)
	}
	id, err := ParseID(csr.URIs[0].String())
	if err != nil {
		return nil, ID{}, fmt.Errorf("check csr: %w: %v", ErrCSRNames, err)
	}
	if id.TrustDomain != trustDomain {
		return nil, ID{}, fmt.Errorf("check csr: %s is not in trust domain %s: %w", id, trustDomain, ErrCSRForeignTrustDomain)
	}
	return csr, id, nil
}

// checkCSRKey requires an ECDSA P-256 public key.
func checkCSRKey(csr *x509.CertificateRequest) error {
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("check csr: key algorithm %s: %w", csr.PublicKeyAlgorithm, ErrCSRKey)
	}
	if pub.Curve != elliptic.P256() {
		return fmt.Errorf("check csr: curve %s: %w", pub.Curve.Params().Name, ErrCSRKey)
	}
	return nil
}

// checkCSRExtensions allows only one subjectAltName extension, made only of
// URI names. The standard library drops name forms it does not know
// (otherName, directoryName, registeredID, ...), so they are checked here
// on the raw extension.
func checkCSRExtensions(csr *x509.CertificateRequest) error {
	seenSAN := false
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			return fmt.Errorf("check csr: extension %s: %w", ext.Id, ErrCSRExtension)
		}
		if seenSAN {
			return fmt.Errorf("check csr: two subjectAltName extensions: %w", ErrCSRNames)
		}
		seenSAN = true
		var names []asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &names)
		if err != nil || len(rest) > 0 {
			return fmt.Errorf("check csr: subjectAltName does not parse: %w", ErrCSRNames)
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != generalNameURI {
				return fmt.Errorf("check csr: subjectAltName of %s: %w", generalNameKind(n), ErrCSRNames)
			}
		}
	}
	return nil
}

// generalNameKind names a GeneralName's form for error messages.
func generalNameKind(n asn1.RawValue) string {
	if n.Class != asn1.ClassContextSpecific {
		return "unknown form"
	}
	kinds := []string{"otherName", "rfc822Name", "dNSName", "x400Address", "directoryName", "ediPartyName",
		"uniformResourceIdentifier", "iPAddress", "registeredID"}
	if n.Tag >= 0 && n.Tag < len(kinds) {
		return "form " + kinds[n.Tag]
	}
	return "unknown form"
}

// Component returns the component an ID names: its path without the
// leading "/" when the path has exactly one segment ("/gateway" gives
// "gateway"); ok is false for longer paths.
func (id ID) Component() (component string, ok bool) {
	c, found := strings.CutPrefix(id.Path, "/")
	if !found || c == "" || strings.Contains(c, "/") {
		return "", false
	}
	return c, true
}

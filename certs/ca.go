package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// backdate is how far before "now" certificates become valid, to tolerate
// small clock skew between clusters.
const backdate = time.Minute

const (
	pemTypeCertificate  = "CERTIFICATE"
	pemTypePrivateKey   = "PRIVATE KEY"
	pemTypeECPrivateKey = "EC PRIVATE KEY"
)

// CA is the certificate authority of one trust domain: a self-signed ECDSA
// P-256 certificate, its private key, and the trust domain it names.
type CA struct {
	// Cert is the self-signed CA certificate; its only URI SAN is
	// "spiffe://<TrustDomain>".
	Cert *x509.Certificate
	// Key is the CA's private key, matching Cert.
	Key *ecdsa.PrivateKey
	// TrustDomain is the trust domain this CA issues identities in.
	TrustDomain string
}

// NewCA creates a new self-signed ECDSA P-256 CA for trustDomain, valid from
// one minute before now until now+lifetime. The certificate may sign only
// leaves (path length zero) and carries the URI SAN "spiffe://<trustDomain>".
func NewCA(trustDomain string, lifetime time.Duration, now time.Time) (*CA, error) {
	if err := validateTrustDomain(trustDomain); err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if lifetime <= 0 {
		return nil, fmt.Errorf("create ca for %s: lifetime %v is not positive", trustDomain, lifetime)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create ca for %s: generate key: %w", trustDomain, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("create ca for %s: %w", trustDomain, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Causeway"},
			CommonName:   "Causeway CA " + trustDomain,
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: trustDomain}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create ca for %s: sign certificate: %w", trustDomain, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create ca for %s: parse certificate: %w", trustDomain, err)
	}
	return &CA{Cert: cert, Key: key, TrustDomain: trustDomain}, nil
}

// IssueLeaf issues a leaf certificate for pub with the SPIFFE ID
// "spiffe://<ca.TrustDomain>/<component>" as its only URI SAN. The leaf is
// valid from one minute before now until now+lifetime, capped at the CA's own
// expiry, and may be used for both TLS server and client authentication.
func (ca *CA) IssueLeaf(component string, pub crypto.PublicKey, lifetime time.Duration, now time.Time) (*x509.Certificate, error) {
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("issue leaf %q: %w", component, err)
	}
	id, err := NewID(ca.TrustDomain, component)
	if err != nil {
		return nil, fmt.Errorf("issue leaf: %w", err)
	}
	if pub == nil {
		return nil, fmt.Errorf("issue leaf %s: public key is nil", id)
	}
	if lifetime <= 0 {
		return nil, fmt.Errorf("issue leaf %s: lifetime %v is not positive", id, lifetime)
	}
	notBefore := now.Add(-backdate)
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("issue leaf %s: ca expired at %s", id, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("issue leaf %s: %w", id, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Causeway"},
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: id.TrustDomain, Path: id.Path}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue leaf %s: sign certificate: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue leaf %s: parse certificate: %w", id, err)
	}
	return leaf, nil
}

// NewLeafKeyPair generates a fresh ECDSA P-256 key, issues a leaf for it with
// IssueLeaf, and returns it as a tls.Certificate whose Certificate chain is
// the leaf alone and whose Leaf field is set.
func (ca *CA) NewLeafKeyPair(component string, lifetime time.Duration, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create leaf key pair %q: generate key: %w", component, err)
	}
	leaf, err := ca.IssueLeaf(component, key.Public(), lifetime, now)
	if err != nil {
		return nil, fmt.Errorf("create leaf key pair: %w", err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{leaf.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// LoadCA loads a CA from a PEM "CERTIFICATE" block and a PEM private key
// ("PRIVATE KEY" in PKCS#8, or "EC PRIVATE KEY" in SEC 1). The certificate
// must be a self-signed CA whose only URI SAN is "spiffe://<trust-domain>",
// and the key must be the matching ECDSA P-256 key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certBlock, _ := pem.Decode(certPEM)
	if certBlock == nil || certBlock.Type != pemTypeCertificate {
		return nil, errors.New("load ca: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load ca: parse certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("load ca: certificate is not a CA")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("load ca: certificate is not self-signed: %w", err)
	}
	td, err := trustDomainFromCA(cert)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}

	keyBlock, _ := pem.Decode(keyPEM)
	if keyBlock == nil {
		return nil, errors.New("load ca: no PEM private key block")
	}
	var parsed any
	switch keyBlock.Type {
	case pemTypePrivateKey:
		parsed, err = x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	case pemTypeECPrivateKey:
		parsed, err = x509.ParseECPrivateKey(keyBlock.Bytes)
	default:
		return nil, fmt.Errorf("load ca: unsupported PEM key block type %q", keyBlock.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("load ca: parse private key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load ca: private key is %T, want ECDSA", parsed)
	}
	if key.Curve != elliptic.P256() {
		return nil, errors.New("load ca: private key is not on curve P-256")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("load ca: private key does not match certificate")
	}
	return &CA{Cert: cert, Key: key, TrustDomain: td}, nil
}

// PEM encodes the CA certificate as a PEM "CERTIFICATE" block and its key as
// a PKCS#8 PEM "PRIVATE KEY" block.
func (ca *CA) PEM() (certPEM, keyPEM []byte, err error) {
	if err := ca.check(); err != nil {
		return nil, nil, fmt.Errorf("encode ca: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode ca key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: ca.Cert.Raw})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// WriteFileExclusive writes data to path with permissions perm. Unless force
// is set it refuses to replace an existing file, returning an error that
// wraps os.ErrExist. With force, the file is replaced atomically (written to a
// temporary file in the same directory, then renamed). The file mode is set
// to exactly perm regardless of the process umask.
func WriteFileExclusive(path string, data []byte, perm os.FileMode, force bool) error {
	if force {
		return replaceFile(path, data, perm)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeAndClose(f, data, perm); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// replaceFile atomically replaces path with data.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	if err := writeAndClose(f, data, perm); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeAndClose sets f's mode to perm, writes data, syncs and closes f.
func writeAndClose(f *os.File, data []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// check reports whether ca is usable for signing.
func (ca *CA) check() error {
	switch {
	case ca == nil:
		return errors.New("ca is nil")
	case ca.Cert == nil:
		return errors.New("ca certificate is nil")
	case ca.Key == nil:
		return errors.New("ca key is nil")
	}
	return validateTrustDomain(ca.TrustDomain)
}

// trustDomainFromCA extracts the trust domain from a CA certificate whose
// only URI SAN is "spiffe://<trust-domain>" (no path).
func trustDomainFromCA(cert *x509.Certificate) (string, error) {
	if n := len(cert.URIs); n != 1 || cert.URIs[0] == nil {
		return "", fmt.Errorf("read ca trust domain: want exactly 1 URI SAN, got %d: %w", n, ErrInvalidID)
	}
	s := cert.URIs[0].String()
	td, ok := strings.CutPrefix(s, spiffeScheme)
	if !ok {
		return "", fmt.Errorf("read ca trust domain from %q: scheme must be %q: %w", s, spiffeScheme, ErrInvalidID)
	}
	if err := validateTrustDomain(td); err != nil {
		return "", fmt.Errorf("read ca trust domain from %q: %w", s, err)
	}
	return td, nil
}

// randomSerial returns a random positive 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

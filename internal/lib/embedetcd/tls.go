package embedetcd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ServerName is the DNS name in the certificate NewTLSFiles issues, so a
// client that reaches etcd through another address (a relay, a tunnel)
// can still verify it by setting its TLS server name to it.
const ServerName = "etcd.causeway.internal"

// TLSFiles are the PEM files of an etcd server's client TLS.
type TLSFiles struct {
	// CAFile is the CA certificate clients verify the server with.
	CAFile string
	// CertFile and KeyFile are the server's certificate and key.
	CertFile, KeyFile string
}

// Names of the files NewTLSFiles writes.
const (
	CAFileName   = "etcd-ca.crt"
	CertFileName = "etcd-server.crt"
	KeyFileName  = "etcd-server.key"
)

// NewTLSFiles creates a CA and a server certificate for hosts (IP
// addresses and DNS names, plus ServerName) valid for lifetime, and writes
// them to dir (0700) as CAFileName, CertFileName and KeyFileName, all
// 0600. The CA's key is never written: nothing else can be issued from it.
// Existing files are replaced.
func NewTLSFiles(dir string, hosts []string, lifetime time.Duration) (TLSFiles, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("create etcd CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "causeway etcd CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("create etcd CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("create etcd CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("create etcd server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: ServerName},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{ServerName},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("create etcd server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("encode etcd server key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSFiles{}, fmt.Errorf("create %s: %w", dir, err)
	}
	f := TLSFiles{
		CAFile: filepath.Join(dir, CAFileName), CertFile: filepath.Join(dir, CertFileName), KeyFile: filepath.Join(dir, KeyFileName),
	}
	for _, w := range []struct {
		path, typ string
		der       []byte
	}{{f.CAFile, "CERTIFICATE", caDER}, {f.CertFile, "CERTIFICATE", der}, {f.KeyFile, "PRIVATE KEY", keyDER}} {
		if err := writeFile0600(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der})); err != nil {
			return TLSFiles{}, err
		}
	}
	return f, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// writeFile0600 replaces path with data, mode 0600 whatever was there.
func writeFile0600(path string, data []byte) error {
	_ = os.Remove(path)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ClientTLS returns a client TLS configuration that trusts only caFile and
// expects ServerName, so any address of the server verifies.
func ClientTLS(caFile string) (*tls.Config, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read etcd CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("etcd CA %s: no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: ServerName, MinVersion: tls.VersionTLS12}, nil
}

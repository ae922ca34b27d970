package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/causeway-mesh/causeway/certs"
)

// domain is the clusterset domain of the bench's two clusters.
const domain = "clusterset.local"

// clusters are the egress (a) and ingress (b) clusters.
var clusters = []string{"a", "b"}

// runCerts writes into dir a causeway CA per cluster (<c>-ca.pem,
// <c>-ca-key.pem) and, for the HAProxy pair, ca.pem plus server.pem and
// client.pem (certificate then key). All keys are ECDSA P-256, as
// causeway's, so both sides pay for the same signatures.
func runCerts(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory (required)")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	now := time.Now()
	for _, c := range clusters {
		ca, err := certs.NewCA(certs.TrustDomainFor(c, domain), 24*time.Hour, now)
		if err != nil {
			return err
		}
		cert, key, err := ca.PEM()
		if err != nil {
			return err
		}
		if err := writeFiles(*dir, map[string][]byte{c + "-ca.pem": cert, c + "-ca-key.pem": key}); err != nil {
			return err
		}
	}
	return writeHAProxyCerts(*dir, now)
}

// writeHAProxyCerts mints a plain CA with a server and a client leaf.
func writeHAProxyCerts(dir string, now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench haproxy ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	files := map[string][]byte{"ca.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	for i, name := range []string{"server", "client"} {
		usage := x509.ExtKeyUsageServerAuth
		if name == "client" {
			usage = x509.ExtKeyUsageClientAuth
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "bench " + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		files[name+".pem"] = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	}
	return writeFiles(dir, files)
}

func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// loadCA reads cluster c's CA written by runCerts.
func loadCA(dir, c string) (*certs.CA, error) {
	cert, err := os.ReadFile(filepath.Join(dir, c+"-ca.pem"))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, c+"-ca-key.pem"))
	if err != nil {
		return nil, err
	}
	return certs.LoadCA(cert, key)
}

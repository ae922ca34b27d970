// Package certtest makes certificates outside any Causeway CA for tests:
// self-signed leaves, rogue CAs and hand-built chains that the code under
// test must refuse (or, for throwaway servers, accept by pinning). It
// depends on nothing of Causeway, so the certs package's own tests use it
// too. Production code never imports it.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// Manual signs tmpl for a fresh P-256 key. tmpl gets a serial and a
// validity of one hour around now if unset, and uri as its only URI SAN
// unless uri is empty. parent and parentKey nil mean self-signed.
func Manual(t testing.TB, tmpl *x509.Certificate, uri string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Minute)
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("parse URI %q: %v", uri, err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// LeafTemplate is a leaf template like the ones a Causeway CA issues:
// digital signature, server and client authentication, not a CA.
func LeafTemplate() *x509.Certificate {
	return &x509.Certificate{
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
}

// SelfSigned returns a self-signed leaf carrying uri, signed by no CA
// anyone trusts.
func SelfSigned(t testing.TB, uri string) *tls.Certificate {
	t.Helper()
	return Manual(t, LeafTemplate(), uri, nil, nil)
}

package certsctl

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/causeway-mesh/causeway/certs"
)

// CertInfo describes one certificate for people and programs.
type CertInfo struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// SPIFFEID is the leaf's SPIFFE ID, or "spiffe://<trust domain>" for a
	// CA; empty when the certificate carries none.
	SPIFFEID  string    `json:"spiffeID"`
	IsCA      bool      `json:"isCA"`
	Serial    string    `json:"serial"`
	Key       string    `json:"key"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// TimeLeft is NotAfter minus now, rounded to seconds; negative once
	// expired.
	TimeLeft string `json:"timeLeft"`
	Expired  bool   `json:"expired"`
	// Fingerprint is the SHA-256 of the DER certificate ("sha256:<hex>"):
	// what peers pin a cluster's CA by (trustPins, causeway clusters trust).
	Fingerprint string `json:"fingerprint"`
}

func newCertInfo(c *x509.Certificate, now time.Time) CertInfo {
	info := CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), IsCA: c.IsCA, Serial: certs.SerialHex(c),
		Key: keyName(c), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		TimeLeft: c.NotAfter.Sub(now).Round(time.Second).String(), Expired: !now.Before(c.NotAfter),
		Fingerprint: certs.Fingerprint(c),
	}
	if c.IsCA {
		if td, err := certs.TrustDomainOfCA(c); err == nil {
			info.SPIFFEID = "spiffe://" + td
		}
	} else if id, err := certs.IDFromCertificate(c); err == nil {
		info.SPIFFEID = id.String()
	}
	return info
}

func keyName(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return c.PublicKeyAlgorithm.String()
}

// writeCert writes c as indented "key: value" lines.
func writeCert(w io.Writer, indent string, c CertInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s%s:\t%s\n", indent, k, v) }
	row("spiffe id", orNone(c.SPIFFEID))
	row("subject", orNone(c.Subject))
	row("issuer", orNone(c.Issuer))
	row("serial", c.Serial)
	row("fingerprint", c.Fingerprint)
	row("key", c.Key)
	kind := "leaf"
	if c.IsCA {
		kind = "CA"
	}
	row("kind", kind)
	row("not before", c.NotBefore.Format(time.RFC3339))
	left := c.TimeLeft + " left"
	if c.Expired {
		left = "EXPIRED " + strings.TrimPrefix(c.TimeLeft, "-") + " ago"
	}
	row("not after", c.NotAfter.Format(time.RFC3339)+" ("+left+")")
	_ = tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

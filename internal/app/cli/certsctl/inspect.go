package certsctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// InspectOptions are the flags of `causeway certs inspect`.
type InspectOptions struct {
	// Bundles are PEM files of CA certificates, each of one trust domain
	// (a CA directory's bundle.crt, a cluster's ca.crt).
	Bundles []string
	// QUIC makes an address be dialed over QUIC (a gateway) rather than
	// TCP (a federator).
	QUIC bool
	// ALPN is the protocol list offered. If empty, "h2" over TCP and
	// "causeway/1" over QUIC.
	ALPN []string
	// Cert and Key, when both set, are a client certificate to present.
	Cert, Key string
	// Timeout bounds the handshake. If zero, 5s.
	Timeout time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Inspection is the answer of `causeway certs inspect`.
type Inspection struct {
	// Source is the file or address inspected.
	Source string `json:"source"`
	// Protocol is "file", "tls" or "quic"; NegotiatedALPN is set for the
	// last two.
	Protocol       string `json:"protocol"`
	NegotiatedALPN string `json:"negotiatedALPN,omitempty"`
	// Chain is the certificates, leaf first.
	Chain []CertInfo `json:"chain"`
	// Bundles says, for every bundle given, whether it verifies the chain.
	Bundles []BundleCheck `json:"bundles"`
}

// ErrNotVerified is returned (with the result) when a bundle given does not
// verify the chain, so that `causeway certs inspect` exits non-zero.
var ErrNotVerified = errors.New("the chain does not verify")

// Verified returns nil when every bundle given verifies the chain (or none
// was given), else an error wrapping ErrNotVerified naming the bundles.
func (r *Inspection) Verified() error {
	var bad []string
	for _, b := range r.Bundles {
		if !b.Verifies {
			bad = append(bad, b.File)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("inspect: %w against %s", ErrNotVerified, strings.Join(bad, ", "))
}

// BundleCheck is the verdict of one bundle on a chain.
type BundleCheck struct {
	File        string   `json:"file"`
	TrustDomain string   `json:"trustDomain"`
	CASerials   []string `json:"caSerials"`
	// ChainsTo is plain X.509: the chain leads to one of the bundle's CAs.
	ChainsTo bool `json:"chainsTo"`
	// Verifies is Causeway's verdict: the leaf's SPIFFE ID is of this
	// trust domain and its chain verifies against this bundle alone, now
	// (for a CA: it is one of the bundle's CAs).
	Verifies bool `json:"verifies"`
	// Reason explains a false Verifies.
	Reason string `json:"reason,omitempty"`
}

// Inspect describes the certificate chain of target: a PEM file, or a
// host:port to complete a TLS (or QUIC) handshake with.
func Inspect(ctx context.Context, target string, o InspectOptions) (*Inspection, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	out := &Inspection{Source: target, Chain: []CertInfo{}, Bundles: []BundleCheck{}}
	var chain []*x509.Certificate
	if _, err := os.Stat(target); err == nil {
		if chain, err = certs.ReadCertificatesFile(target); err != nil {
			return nil, err
		}
		out.Protocol = "file"
	} else if errors.Is(err, fs.ErrNotExist) {
		if _, _, err := net.SplitHostPort(target); err != nil {
			return nil, fmt.Errorf("inspect %s: neither a file nor a host:port", target)
		}
		if chain, out.NegotiatedALPN, err = fetchChain(ctx, target, o); err != nil {
			return nil, err
		}
		out.Protocol = "tls"
		if o.QUIC {
			out.Protocol = "quic"
		}
	} else {
		return nil, fmt.Errorf("inspect %s: %w", target, err)
	}
	for _, c := range chain {
		out.Chain = append(out.Chain, newCertInfo(c, now()))
	}
	for _, path := range o.Bundles {
		check, err := checkBundle(path, chain, now())
		if err != nil {
			return nil, err
		}
		out.Bundles = append(out.Bundles, check)
	}
	return out, nil
}

// checkBundle judges chain against the bundle file path.
func checkBundle(path string, chain []*x509.Certificate, now time.Time) (BundleCheck, error) {
	cas, err := certs.ReadCertificatesFile(path)
	if err != nil {
		return BundleCheck{}, fmt.Errorf("--bundle: %w", err)
	}
	td, err := certs.TrustDomainOfCA(cas[0])
	if err != nil {
		return BundleCheck{}, fmt.Errorf("--bundle %s: %w", path, err)
	}
	check := BundleCheck{File: path, TrustDomain: td, CASerials: []string{}}
	for _, c := range cas {
		ctd, err := certs.TrustDomainOfCA(c)
		if err != nil || ctd != td {
			return BundleCheck{}, fmt.Errorf("--bundle %s: holds CAs of more than one trust domain", path)
		}
		check.CASerials = append(check.CASerials, certs.SerialHex(c))
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	_, xerr := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	check.ChainsTo = xerr == nil || slices.ContainsFunc(cas, leaf.Equal)
	if leaf.IsCA {
		check.Verifies = slices.ContainsFunc(cas, leaf.Equal) && now.Before(leaf.NotAfter)
		if !check.Verifies {
			check.Reason = "not one of the bundle's CAs, or expired"
		}
		return check, nil
	}
	bs := certs.NewBundleSet()
	bs.Set(td, cas)
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	if _, _, err := certs.VerifyChain(raw, bs, now); err != nil {
		check.Reason = err.Error()
	} else {
		check.Verifies = true
	}
	return check, nil
}

// inspectTLSConfig is the client configuration of an inspection: it
// presents o's certificate if given, and captures the peer's chain (the
// second result reads it) instead of judging it.
func inspectTLSConfig(o InspectOptions, protos []string) (*tls.Config, func() [][]byte, error) {
	var client *tls.Certificate
	if o.Cert != "" && o.Key != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("load client certificate: %w", err)
		}
		client = &pair
	}
	var (
		mu  sync.Mutex
		raw [][]byte
	)
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: protos,
		// The chain is captured and judged against the given bundles, not
		// trusted: nothing is sent to the peer.
		InsecureSkipVerify: true, //nolint:gosec // inspection only; verified against --bundle and reported
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			mu.Lock()
			raw = slices.Clone(rawCerts)
			mu.Unlock()
			return nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if client == nil {
				return &tls.Certificate{}, nil
			}
			return client, nil
		},
	}
	captured := func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return raw
	}
	return cfg, captured, nil
}

// fetchChain completes a handshake with addr and returns the peer's chain.
// The peer is not trusted here: Inspect reports what verifies it.
func fetchChain(ctx context.Context, addr string, o InspectOptions) ([]*x509.Certificate, string, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	protos := o.ALPN
	if len(protos) == 0 {
		protos = []string{"h2"}
		if o.QUIC {
			protos = []string{tunnel.ALPN}
		}
	}
	cfg, captured, err := inspectTLSConfig(o, protos)
	if err != nil {
		return nil, "", err
	}
	var alpn string
	var herr error
	if o.QUIC {
		conn, err := quic.DialAddr(ctx, addr, cfg, &quic.Config{HandshakeIdleTimeout: timeout})
		if err == nil {
			alpn = conn.ConnectionState().TLS.NegotiatedProtocol
			_ = conn.CloseWithError(0, "inspected")
		}
		herr = err
	} else {
		d := &tls.Dialer{Config: cfg}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			alpn = conn.(*tls.Conn).ConnectionState().NegotiatedProtocol
			_ = conn.Close()
		}
		herr = err
	}
	raw := captured()
	if len(raw) == 0 {
		if herr == nil {
			herr = errors.New("peer sent no certificate")
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, "", fmt.Errorf("inspect %s: unreachable: no answer within %s", addr, timeout)
		}
		return nil, "", fmt.Errorf("inspect %s: handshake: %w", addr, herr)
	}
	chain := make([]*x509.Certificate, 0, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, "", fmt.Errorf("inspect %s: peer certificate %d: %w", addr, i, err)
		}
		chain = append(chain, c)
	}
	return chain, alpn, nil
}

// WriteTable implements cli.Tabular.
func (in *Inspection) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s (%s", in.Source, in.Protocol)
	if in.NegotiatedALPN != "" {
		fmt.Fprintf(w, ", ALPN %s", in.NegotiatedALPN)
	}
	fmt.Fprintln(w, ")")
	for i, c := range in.Chain {
		role := "leaf"
		if i > 0 {
			role = "intermediate"
		}
		if c.IsCA && i == 0 {
			role = "CA"
		}
		fmt.Fprintf(w, "certificate %d (%s):\n", i, role)
		writeCert(w, "  ", c)
	}
	if len(in.Bundles) == 0 {
		_, err := fmt.Fprintln(w, "no --bundle given: not verified")
		return err
	}
	fmt.Fprintln(w, "bundles:")
	for _, b := range in.Bundles {
		verdict := "verifies it"
		if !b.Verifies {
			verdict = "does NOT verify it: " + b.Reason
			if b.ChainsTo {
				verdict += " (though the chain leads to one of its CAs)"
			}
		}
		fmt.Fprintf(w, "  %s (%s, CAs %v): %s\n", b.File, b.TrustDomain, b.CASerials, verdict)
	}
	return nil
}

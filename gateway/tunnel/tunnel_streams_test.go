package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/testenv/certtest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// selfSignedTLS returns a server and a client TLS config for ALPN over
// 127.0.0.1 with a throwaway certificate.
func selfSignedTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	cert := certtest.Manual(t, &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, "", nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	server = &tls.Config{Certificates: []tls.Certificate{*cert},
		NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	client = &tls.Config{RootCAs: pool, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	return server, client
}

// TestDefaultStreamLimitCarriesTenThousandFlows holds 10,000 streams open
// at once on one connection with the default stream limit, as one peer gateway
// must for the 10,000-concurrent-flows bench target (quic-go's own default
// would stop at 100).
func TestDefaultStreamLimitCarriesTenThousandFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 streams")
	}
	const flows = 10_000
	serverTLS, clientTLS := selfSignedTLS(t)
	// The default stream limit, with an idle timeout that tolerates a CPU
	// starved test machine (-race, 10,000 streams on shared cores).
	cfg := Config{IdleTimeout: 30 * time.Second}.QUIC()
	require.Equal(t, int64(DefaultMaxIncomingStreams), cfg.MaxIncomingStreams)
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS, cfg)
	require.NoError(t, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	accepted := make(chan int, 1) // streams the server accepted, all still open
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		sconn, err := ln.Accept(ctx)
		if err != nil {
			accepted <- n
			return
		}
		defer sconn.CloseWithError(0, "")
		var held []*quic.Stream // never read to EOF, never closed
		for n < flows {
			s, err := sconn.AcceptStream(ctx)
			if err != nil {
				break
			}
			held = append(held, s)
			n++
		}
		accepted <- n
		<-ctx.Done()
		_ = held
	}()
	defer func() { cancel(); <-done }()

	conn, err := quic.DialAddr(ctx, ln.Addr().String(), clientTLS, cfg)
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	start := time.Now()
	for i := range flows {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := conn.OpenStreamSync(octx)
		ocancel()
		require.NoError(t, err, "stream %d", i)
		_, err = s.Write([]byte{1}) // the peer sees a stream once it carries a frame
		require.NoError(t, err)
	}
	opened := time.Since(start)
	select {
	case n := <-accepted:
		require.Equal(t, flows, n)
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not accept every stream")
	}
	t.Logf("%d concurrent streams open on one connection after %v", flows, opened.Round(time.Millisecond))
}

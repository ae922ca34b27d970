package certs_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
)

// echoQUIC serves QUIC on 127.0.0.1 with cfg, echoing every stream, until
// the test ends. It returns the address and the serials of the client
// certificates of every accepted connection.
func echoQUIC(t *testing.T, tlsServer func() *quic.Listener) (string, func() []string) {
	t.Helper()
	ln := tlsServer()
	var (
		mu      sync.Mutex
		serials []string
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			serials = append(serials, certs.SerialHex(conn.ConnectionState().TLS.PeerCertificates[0]))
			mu.Unlock()
			wg.Go(func() {
				defer conn.CloseWithError(0, "")
				for {
					s, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					wg.Go(func() {
						defer s.Close()
						_, _ = io.Copy(s, s)
					})
				}
			})
		}
	})
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), serials...)
	}
}

// request sends msg on a new stream of conn and checks the echo.
func request(ctx context.Context, conn *quic.Conn, msg string) error {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	if err := s.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(s, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// TestRotationKeepsQUICConnections rotates both sides' leaves (4s
// lifetime) under a continuous request loop over one QUIC connection, while
// fresh connections handshake next to it.
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestRotationKeepsQUICConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const lifetime = 4 * time.Second // NotAfter has whole seconds: 3-4s, renewed after 2-2.7s
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rotator := func(ca *certs.CA) *certs.Rotator {
		id, err := certs.NewID(ca.TrustDomain, "gateway")
		require.NoError(t, err)
		r, err := certs.NewRotator(ctx, certs.RotatorConfig{ID: id, Logger: discard, RetryMin: 100 * time.Millisecond,
			Signer: &certs.LocalSigner{CA: ca, Lifetime: lifetime}})
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() { _ = r.Run(ctx) })
		t.Cleanup(wg.Wait)
		return r
	}
	westRot, eastRot := rotator(f.west), rotator(f.east)
	qcfg := tunnel.Config{}.QUIC()

	addr, clientSerials := echoQUIC(t, func() *quic.Listener {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { udp.Close() })
		tr := &quic.Transport{Conn: udp}
		t.Cleanup(func() { tr.Close() })
		ln, err := tr.Listen(certs.ServerConfig(certs.TLSOptions{Source: westRot, Bundles: f.bundles,
			Authorize: certs.AuthorizeMember("gateway"), NextProtos: []string{tunnel.ALPN}}), qcfg)
		require.NoError(t, err)
		return ln
	})
	clientTLS := certs.ClientConfig(certs.TLSOptions{Source: eastRot, Bundles: f.bundles,
		Authorize: certs.AuthorizeID(f.westID), NextProtos: []string{tunnel.ALPN}})
	dial := func() *quic.Conn {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		conn, err := quic.DialAddr(dctx, addr, clientTLS, qcfg)
		require.NoError(t, err)
		return conn
	}

	long := dial()
	defer long.CloseWithError(0, "")
	firstServerLeaf := long.ConnectionState().TLS.PeerCertificates[0]

	// The request loop: several concurrent workers on the one connection.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	loopCtx, stopLoop := context.WithCancel(ctx)
	var loop sync.WaitGroup
	for w := range 4 {
		loop.Go(func() {
			for i := 0; loopCtx.Err() == nil; i++ {
				if err := request(ctx, long, fmt.Sprintf("worker %d request %d", w, i)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}

	// Fresh handshakes next to it see the certificates change.
	serverSerials := map[string]bool{}
	deadline := time.Now().Add(3 * lifetime)
	pace := time.NewTicker(300 * time.Millisecond)
	defer pace.Stop()
	for ; time.Now().Before(deadline); <-pace.C {
		c := dial()
		serverSerials[certs.SerialHex(c.ConnectionState().TLS.PeerCertificates[0])] = true
		require.NoError(t, request(ctx, c, "fresh"))
		_ = c.CloseWithError(0, "")
	}
	stopLoop()
	loop.Wait()

	require.Zero(t, failed.Load(), "failed requests; first: %v", firstErr.Load())
	require.Greater(t, ok.Load(), int64(100))
	// The long-lived connection was never re-established: it is the same,
	// still open, and still authenticated by the server's first leaf,
	// which has expired by now.
	require.NoError(t, long.Context().Err())
	require.True(t, firstServerLeaf.Equal(long.ConnectionState().TLS.PeerCertificates[0]))
	require.True(t, time.Now().After(firstServerLeaf.NotAfter), "first leaf expired while its connection kept working")
	_, err := certs.VerifyPeer(long.ConnectionState().TLS, f.bundles, time.Now())
	var invalid x509.CertificateInvalidError
	require.ErrorAs(t, err, &invalid, "VerifyPeer finds the expired peer of the old connection")
	// New handshakes got new certificates on both sides.
	require.GreaterOrEqual(t, len(serverSerials), 3, "server serials seen by fresh handshakes: %v", serverSerials)
	seen := map[string]bool{}
	for _, s := range clientSerials() {
		seen[s] = true
	}
	require.GreaterOrEqual(t, len(seen), 3, "client serials seen by the server")
}

package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/testenv/certtest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// Helpers of the certificate tests (certs_*_test.go), on top of the
// two-cluster fixture of gateway_test.go: east imports demo/echo, which
// west exports.

// certsPublish publishes a copy of the fixture's current view changed by
// mutate, with the next revision.
func certsPublish(f *fixture, mutate func(map[string]*causewayv1.Entry)) {
	v := f.feed.View()
	entries := maps.Clone(v.Entries())
	mutate(entries)
	f.feed.Publish(catalog.NewView(entries, v.Revision+1))
}

// certsSetBundle publishes cluster's trust bundle with authorities.
func certsSetBundle(f *fixture, cluster string, authorities []*x509.Certificate) {
	td := certs.TrustDomainFor(cluster, domain)
	certsPublish(f, func(e map[string]*causewayv1.Entry) {
		e["bundles/"+cluster] = &causewayv1.Entry{Key: "bundles/" + cluster, Record: &causewayv1.Entry_Bundle{
			Bundle: &causewayv1.TrustBundle{Cluster: cluster, TrustDomain: td, X509Authorities: certs.AuthoritiesDER(authorities)}}}
	})
}

// certsWaitBundle waits until g trusts exactly n authorities for cluster.
func certsWaitBundle(t *testing.T, g *Gateway, cluster string, n int) {
	t.Helper()
	td := certs.TrustDomainFor(cluster, domain)
	require.Eventually(t, func() bool {
		b, ok := g.bundles.Bundle(td)
		return ok && len(b) == n
	}, 10*time.Second, 10*time.Millisecond, "gateway %s never trusted %d CAs of %s", g.cfg.Cluster, n, cluster)
}

// certsEchoThroughEgress makes one request through east's egress listener
// for demo/echo: west's backend echoes msg back.
func certsEchoThroughEgress(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial egress: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// certsTunnelRequest opens a stream for demo/echo as east on conn (a
// connection to west's gateway) and checks the echo of msg.
func certsTunnelRequest(ctx context.Context, conn *quic.Conn, msg string) error {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	if err := s.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if err := tunnel.WriteFrame(s, header("east")); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	resp, err := tunnel.ReadResponse(s, 0)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.GetCode() != causewayv1.StreamCode_STREAM_CODE_OK {
		return fmt.Errorf("refused: %s %s", resp.GetCode(), resp.GetMessage())
	}
	if _, err := io.WriteString(s, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := s.Close(); err != nil {
		return err
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

// certsDial dials addr over QUIC with cfg.
func certsDial(ctx context.Context, addr string, cfg *tls.Config) (*quic.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return quic.DialAddr(dctx, addr, cfg, tunnel.Config{}.QUIC())
}

// certsRejected asserts that a dial attempt did not produce a usable
// connection: either the dial failed, or (TLS 1.3 lets the client finish
// before the server judged its certificate) the server closed the
// connection at once. It returns the error that ended it.
func certsRejected(t *testing.T, conn *quic.Conn, err error) error {
	t.Helper()
	if err == nil {
		select {
		case <-conn.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the server kept a connection it must have refused")
		}
		_, serr := conn.OpenStream()
		require.Error(t, serr)
		err = context.Cause(conn.Context())
	}
	require.Error(t, err)
	return err
}

// certsCryptoError asserts that err is a QUIC connection close carrying
// the TLS alert (any alert if 0).
func certsCryptoError(t *testing.T, err error, alert uint8) {
	t.Helper()
	var te *quic.TransportError
	require.ErrorAs(t, err, &te)
	require.True(t, te.ErrorCode.IsCryptoError(), "not a TLS alert: %v", err)
	if alert != 0 {
		require.Equal(t, quic.TransportErrorCode(0x100+uint64(alert)), te.ErrorCode, "err: %v", err)
	}
}

// certsSelfSigned returns a self-signed leaf carrying uri.
func certsSelfSigned(t *testing.T, uri string) *tls.Certificate {
	t.Helper()
	return certtest.SelfSigned(t, uri)
}

// certsRogueServer serves QUIC on 127.0.0.1 with cfg, accepting and holding
// connections, until the test ends; it returns its address.
func certsRogueServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := quic.ListenAddr("127.0.0.1:0", cfg, tunnel.Config{}.QUIC())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				<-ctx.Done()
				_ = conn.CloseWithError(0, "")
			})
		}
	})
	return ln.Addr().String()
}

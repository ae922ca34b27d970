package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// Attack tests of docs/security.md for the gateway (F2's gateway half,
// F13, F15); F6 is in security_limits_test.go. The attacks run against
// real gateways over QUIC and real TCP backends on 127.0.0.0/8.

// pointWestAt makes west's export of demo/echo have one ready endpoint,
// addr, and waits until west's gateway sees it.
func pointWestAt(t *testing.T, f *fixture, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	const key = "exports/demo/echo/west"
	certsPublish(f, func(e map[string]*causewayv1.Entry) {
		x := proto.Clone(e[key].GetExport()).(*causewayv1.ExportRecord)
		x.Endpoints = []*causewayv1.Endpoint{{Address: host, Ready: true, Zone: "z-west",
			TargetPorts: map[string]uint32{"http": uint32(p)}}}
		e[key] = &causewayv1.Entry{Key: key, Record: &causewayv1.Entry_Export{Export: x}}
	})
}

// eastPeerConn dials west's gateway with a fresh east gateway certificate.
func eastPeerConn(t *testing.T, f *fixture) *quic.Conn {
	t.Helper()
	cert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	conn, err := f.peerConn(t, cert, f.allBundles())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	return conn
}

// TestSecurityF2_NoDialErrorToPeer: the probe (4g) read `DIAL_FAILED dial
// tcp 127.64.0.1:2390: connect: connection refused` from the refusal, a
// port scanner of the ingress gateway's network. Now a peer gets the code
// and a generic message; the detail is logged locally and counted.
func TestSecurityF2_NoDialErrorToPeer(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	f := newFixture(t, func(c *Config) { c.Logger = log })
	closed := egressRefusingAddr(t)
	_, closedPort, _ := net.SplitHostPort(closed)
	pointWestAt(t, f, closed)
	conn := eastPeerConn(t, f)
	west := f.clusters["west"].gw

	var resp *causewayv1.StreamResponse
	require.Eventually(t, func() bool { // until west routes by the new view
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := conn.OpenStreamSync(ctx)
		require.NoError(t, err)
		resp, _ = exchangeHeader(t, s, header("east"))
		return resp.GetCode() == causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED
	}, 10*time.Second, 20*time.Millisecond, "the closed endpoint must be refused DIAL_FAILED")

	msg := resp.GetMessage()
	require.Equal(t, dialFailedMessage, msg)
	for _, leak := range []string{closedPort, "127.0.0.1", "refused", "dial tcp", "connect:"} {
		require.NotContains(t, msg, leak, "the peer learned about the local network")
	}
	require.GreaterOrEqual(t, testutil.ToFloat64(west.metrics.dialErrors.WithLabelValues(dialErrRefused)), 1.0)
	require.Contains(t, logs.String(), "endpoint="+closed, "the detail is logged locally")
	require.Contains(t, logs.String(), "connection refused")

	// An open port answers OK, as before: what the peer may learn is only
	// what the cluster exports.
	pointWestAt(t, f, f.backend.Addr().String())
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return certsTunnelRequest(ctx, conn, "open") == nil
	}, 10*time.Second, 20*time.Millisecond)
}

// stuckBackend accepts connections and never reads, writes or closes them
// (the probe's backend legs in FIN-WAIT-1 behind a full backlog).
func stuckBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// slowAnswerBackend reads a request until EOF, then sends n chunks, gap
// apart, and closes.
func slowAnswerBackend(t *testing.T, n int, gap time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
				pace := time.NewTicker(gap) // the backend's pace, not a wait of the test
				defer pace.Stop()
				for i := range n {
					<-pace.C
					if _, err := c.Write([]byte(strconv.Itoa(i % 10))); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestSecurityF13_HalfClosedFlowReaped: a client that sends its request,
// FIN and closes its socket, to a backend that never answers, no longer
// leaves the flow open in both gateways until FlowIdleTimeout (1 h): it is
// reset after HalfClosedTimeout without bytes. A half-closed flow that
// still moves bytes goes on.
func TestSecurityF13_HalfClosedFlowReaped(t *testing.T) {
	const halfClosed = 500 * time.Millisecond
	t.Run("client gone, backend silent", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.HalfClosedTimeout = halfClosed })
		pointWestAt(t, f, stuckBackend(t))
		east, west := f.clusters["east"].gw, f.clusters["west"].gw // both route by the feed's view per flow

		const flows = 20
		for range flows {
			c, err := net.Dial("tcp", f.vip("127.0.0.1:8080"))
			require.NoError(t, err)
			_, err = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			require.NoError(t, err)
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			require.NoError(t, c.Close())
		}
		require.Eventually(t, func() bool {
			return testutil.ToFloat64(east.metrics.streams.vec.WithLabelValues("egress", "demo/echo", "west", resultOK)) == flows
		}, 10*time.Second, 10*time.Millisecond, "every half-closed flow must end (egress)")
		require.Eventually(t, func() bool {
			return testutil.ToFloat64(east.metrics.egress.active) == 0 && testutil.ToFloat64(west.metrics.ingress.active) == 0
		}, 10*time.Second, 10*time.Millisecond, "half-closed flows still open")
	})
	t.Run("half-closed flow still moving bytes goes on", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.HalfClosedTimeout = halfClosed })
		const chunks = 8
		pointWestAt(t, f, slowAnswerBackend(t, chunks, halfClosed/5)) // 1.6× the timeout in all
		require.Eventually(t, func() bool {
			got, err := egressRequest(f.vip("127.0.0.1:8080"), "req")
			return err == nil && got == "01234567"
		}, 20*time.Second, 20*time.Millisecond, "a half-closed flow still receiving was cut")
	})
}

// TestSecurityF15_RejectedHandshakesCounted: the probe's 1,000 rejected
// anonymous handshakes left handshakes_total unchanged. Handshakes
// refused during TLS (no certificate, an untrusted one, another ALPN)
// are now counted with result="rejected"; a good one is not.
func TestSecurityF15_RejectedHandshakesCounted(t *testing.T) {
	f := newFixture(t)
	west := f.clusters["west"]
	rejected := west.gw.metrics.handshakes.WithLabelValues("server", "rejected")
	ok := west.gw.metrics.handshakes.WithLabelValues("server", "ok")
	require.Zero(t, testutil.ToFloat64(rejected))

	rogue, err := certs.NewCA(certs.TrustDomainFor("east", domain), time.Hour, time.Now())
	require.NoError(t, err)
	rogueLeaf, err := rogue.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	good, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	attempt := func(cert *tls.Certificate, alpn string) {
		opts := certs.TLSOptions{Bundles: f.allBundles(), NextProtos: []string{alpn}}
		if cert != nil {
			opts.Source = certs.NewStaticSource(cert)
		}
		cfg := certs.ClientConfig(opts)
		if cert == nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, west.udp.LocalAddr().String(), cfg, tunnel.Config{}.QUIC())
		if err == nil {
			<-conn.Context().Done() // TLS 1.3: the server refuses after the client finished
		}
	}
	attempt(nil, tunnel.ALPN)       // no client certificate
	attempt(rogueLeaf, tunnel.ALPN) // an east ID from a CA no bundle holds
	attempt(good, "h2")             // another protocol
	require.Eventually(t, func() bool { return testutil.ToFloat64(rejected) == 3 }, 10*time.Second, 10*time.Millisecond,
		"every rejected handshake must be counted")
	require.Zero(t, testutil.ToFloat64(ok))

	conn := eastPeerConn(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, certsTunnelRequest(ctx, conn, "good"))
	require.Equal(t, 1.0, testutil.ToFloat64(ok))
	require.Equal(t, 3.0, testutil.ToFloat64(rejected), "a good handshake is not a rejection")
}

package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// dialFrom connects to addr from the local address ip (any 127.0.0.0/8
// address is local on Linux), standing for a client pod.
func dialFrom(ip, addr string) (*net.TCPConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// TestSecurityF6_OneClientCannotBlockPair: the probe (8b) held 100 idle
// connections from one client through east's VIP for south, whose stream
// limit was 100, and every other client's request failed after 5 s. Now
// a client address holds at most MaxFlowsPerSource flows (the rest get
// RST at once), so other clients of the pair still get through at once.
func TestSecurityF6_OneClientCannotBlockPair(t *testing.T) {
	const credit, perSource, attackerConns = 20, 10, 30
	f := newFixture(t, func(c *Config) {
		c.Tunnel.MaxIncomingStreams = credit // west's stream credit per connection
		c.MaxFlowsPerSource = perSource
	})
	east := f.clusters["east"].gw
	vip := f.vip("127.0.0.1:8080")

	// The attacker opens more idle flows than the pair's stream credit.
	var held []*net.TCPConn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	reset := 0 // on loopback the RST may beat connect's return
	for range attackerConns {
		c, err := dialFrom("127.0.0.2", vip)
		if errors.Is(err, syscall.ECONNRESET) {
			reset++
			continue
		}
		require.NoError(t, err)
		held = append(held, c)
	}
	refusals := east.metrics.limitRefusals.WithLabelValues(limitSourceFlows)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(refusals) == attackerConns-perSource && testutil.ToFloat64(east.metrics.egress.active) == perSource
	}, 10*time.Second, 10*time.Millisecond, "want the flows over the per-source limit refused and the rest open")
	// The refused connections were reset, not left waiting.
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			reset++
		}
	}
	require.Equal(t, attackerConns-perSource, reset, "the connections over the limit must be closed at once")

	// Other clients of the same pair are served at once, concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := time.Now()
	for i := range 8 {
		wg.Go(func() {
			c, err := dialFrom("127.0.0.3", vip)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			errs <- echoOn(c, "client "+string(rune('a'+i)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "another client of the pair was blocked")
	}
	require.Less(t, time.Since(start), 3*time.Second, "other clients waited for stream credit")
	// The others' flows end (their gateway side finishes just after the
	// echo); the attacker's are still held.
	require.Eventually(t, func() bool { return testutil.ToFloat64(east.metrics.egress.active) == perSource },
		5*time.Second, 10*time.Millisecond, "the attacker's flows are still held, the others ended")
}

// echoOn sends msg on c, half-closes and expects msg back.
func echoOn(c *net.TCPConn, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	buf := make([]byte, 0, len(msg))
	tmp := make([]byte, 64)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	if string(buf) != msg {
		return errors.New("echo " + string(buf) + ", want " + msg)
	}
	return nil
}

// openWriting opens a stream on conn and writes w on it.
func openWriting(t *testing.T, conn *quic.Conn, w []byte) *quic.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	_, _ = s.Write(w)
	return s
}

// overloaded reports whether the peer reset s with CodeOverloaded before
// deadline (else s is still open and nothing was read from it but at
// most the first byte of its response).
func overloaded(s *quic.Stream, deadline time.Time) bool {
	_ = s.SetReadDeadline(deadline)
	_, err := s.Read(make([]byte, 1))
	_ = s.SetReadDeadline(time.Time{})
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote && se.ErrorCode == tunnel.CodeOverloaded
}

// TestSecurityF6_PeerStreamAndConnectionCaps: the probe (8c) opened 500
// connections with one south gateway identity, and 3 × 15,000 streams with
// half-read headers added 300 MB. Now one peer cluster is capped in
// connections, in streams over all its connections and in the memory of
// half-read headers; the streams over a cap are reset with 0x4
// (OVERLOADED) at once and counted, and what the peer holds is released
// when its streams end.
// Over 80 lines: one attack whose steps share its servers and connection.
func TestSecurityF6_PeerStreamAndConnectionCaps(t *testing.T) {
	const maxConns, maxStreams, maxPending = 2, 30, 5
	f := newFixture(t, func(c *Config) {
		c.MaxPeerConns, c.MaxPeerStreams = maxConns, maxStreams
		c.MaxPeerHeaderBytes = maxPending * (tunnel.DefaultMaxHeaderSize + pendingStreamCost)
		c.HeaderTimeout = 4 * time.Second // half-read headers stay pending while the test looks
	})
	west := f.clusters["west"].gw
	td := f.clusters["east"].ca.TrustDomain
	refusals := func(limit string) float64 {
		return testutil.ToFloat64(west.metrics.limitRefusals.WithLabelValues(limit))
	}

	// Connections: the ones over the cap are closed with 0x2.
	var conns []*quic.Conn
	for range maxConns + 2 {
		conns = append(conns, eastPeerConn(t, f))
	}
	for _, c := range conns[maxConns:] {
		select {
		case <-c.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a connection over the per-peer cap stayed open")
		}
		var ae *quic.ApplicationError
		require.ErrorAs(t, context.Cause(c.Context()), &ae)
		require.Equal(t, tunnel.ConnCodeOverloaded, ae.ErrorCode)
	}
	for _, c := range conns[:maxConns] {
		require.NoError(t, c.Context().Err(), "a connection within the cap was closed")
	}
	require.Equal(t, 2.0, refusals(limitPeerConns))
	require.Equal(t, maxConns, west.peerCaps.usage(td).conns)

	// Half-read headers: a length prefix and one byte, then silence.
	partial := []byte{0x00, 0x50, 0x08}
	var halfRead []*quic.Stream
	for range 20 {
		halfRead = append(halfRead, openWriting(t, conns[0], partial))
		require.LessOrEqual(t, west.peerCaps.usage(td).headerBytes, west.cfg.MaxPeerHeaderBytes, "header memory over its bound")
	}
	pending, deadline := 0, time.Now().Add(time.Second) // resets come at once; pending ones wait for the 4 s timeout
	for _, s := range halfRead {
		if !overloaded(s, deadline) {
			pending++
		}
	}
	require.Equal(t, maxPending, pending, "half-read headers held")
	require.Equal(t, float64(20-maxPending), refusals(limitPeerHeaders))
	// They get BAD_HEADER at HeaderTimeout, which releases them.
	require.Eventually(t, func() bool { return west.peerCaps.usage(td) == peerUsage{conns: maxConns} },
		10*time.Second, 10*time.Millisecond, "half-read headers must be released at the header timeout")

	// Streams over both connections: maxStreams flows held open, the rest
	// reset at once.
	var hdr bytes.Buffer
	require.NoError(t, tunnel.WriteFrame(&hdr, header("east")))
	var open []*quic.Stream
	for i := range maxStreams + 10 {
		s := openWriting(t, conns[i%maxConns], hdr.Bytes())
		if !overloaded(s, time.Now().Add(2*time.Second)) { // an OK response or a reset, at once
			open = append(open, s)
		}
	}
	require.Len(t, open, maxStreams, "streams one peer cluster holds")
	require.Equal(t, 10.0, refusals(limitPeerStreams))
	require.Equal(t, maxStreams, west.peerCaps.usage(td).streams)

	// East at its caps costs another member cluster nothing.
	north := joinNorth(t, f)
	require.Eventually(t, func() bool { // once west trusts north's bundle
		conn, err := f.peerConn(t, north, f.allBundles())
		if err != nil {
			return false
		}
		defer conn.CloseWithError(0, "")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return false
		}
		_ = s.SetDeadline(time.Now().Add(2 * time.Second))
		if tunnel.WriteFrame(s, header("north")) != nil {
			return false
		}
		resp, err := tunnel.ReadResponse(s, 0)
		return err == nil && resp.GetCode() == causewayv1.StreamCode_STREAM_CODE_OK
	}, 10*time.Second, 50*time.Millisecond, "north must be served while east is at its caps")

	// Ending its flows gives the peer its streams back.
	for _, s := range open {
		_ = s.Close()
	}
	require.Eventually(t, func() bool { return west.peerCaps.usage(td).streams == 0 }, 10*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, certsTunnelRequest(ctx, conns[1], "after"))
}

// TestOverloadedResetIsARefusal: the egress side reads a 0x4 reset before
// the response as the refusal OVERLOADED, which moves the flow on without
// ejecting the cluster.
func TestOverloadedResetIsARefusal(t *testing.T) {
	r := overloadedRefusal(&quic.StreamError{ErrorCode: tunnel.CodeOverloaded, Remote: true})
	require.NotNil(t, r)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OVERLOADED, r.code)
	require.False(t, isClusterFailure(r))
	require.Nil(t, overloadedRefusal(&quic.StreamError{ErrorCode: tunnel.CodeOverloaded}), "our own reset is no refusal")
	require.Nil(t, overloadedRefusal(&quic.StreamError{ErrorCode: tunnel.CodeFlowReset, Remote: true}))
	require.False(t, isClusterFailure(errStreamCredit))
}

// joinNorth adds a third member cluster, north, to the fixture's catalog
// and returns a north gateway certificate.
func joinNorth(t *testing.T, f *fixture) *tls.Certificate {
	t.Helper()
	td := certs.TrustDomainFor("north", domain)
	ca, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	certsPublish(f, func(e map[string]*causewayv1.Entry) {
		e["clusters/north"] = &causewayv1.Entry{Key: "clusters/north", Record: &causewayv1.Entry_Cluster{
			Cluster: &causewayv1.ClusterRecord{Name: "north", Region: "r-north", Zone: "z-north", TrustDomain: td}}}
		e["bundles/north"] = &causewayv1.Entry{Key: "bundles/north", Record: &causewayv1.Entry_Bundle{
			Bundle: &causewayv1.TrustBundle{Cluster: "north", TrustDomain: td, X509Authorities: [][]byte{ca.Cert.Raw}}}}
	})
	cert, err := ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	return cert
}

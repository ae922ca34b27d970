package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// rotationLifetime is the leaf lifetime of the rotation tests. X.509
// stores NotAfter in whole seconds, so a leaf lives 3-4s and is renewed
// after 2-2.7s, leaving over a second of slack on a loaded machine.
const rotationLifetime = 4 * time.Second

// certsRotate gives cluster c's gateway a rotating certificate from ca
// (a *certs.CA or *certs.CASet) until the test ends. onIssue, if set, sees
// every leaf.
//
// The gateway reads its certificate from the certs.Source given to New
// only once and serves a copy, a *certs.StaticSource; until New keeps the
// Source (see docs/certificates.md, Implementation status), the rotator
// pushes every renewal into it, which is exactly what keeping the Source
// would do. Once New keeps the fixture's StaticSource, the same push
// still applies.
func certsRotate(t *testing.T, c *testCluster, ca certs.CASource, onIssue func(*x509.Certificate)) *certs.Rotator {
	t.Helper()
	id, err := certs.NewID(c.ca.TrustDomain, "gateway")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r, err := certs.NewRotator(ctx, certs.RotatorConfig{
		ID: id, RetryMin: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Signer: &certs.LocalSigner{CA: ca, Lifetime: rotationLifetime, Authorize: certs.AuthorizeComponents("gateway")},
		OnRotate: func(cert *tls.Certificate) {
			if s, ok := any(c.gw.tls).(interface{ Set(*tls.Certificate) }); ok {
				s.Set(cert)
			} else {
				t.Errorf("gateway certificate source %T cannot be updated", c.gw.tls)
			}
			if onIssue != nil {
				onIssue(cert.Leaf)
			}
		},
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// certsPeerConn returns g's current connection to cluster's gateway.
func certsPeerConn(g *Gateway, cluster string) *quic.Conn {
	p := g.peers.get(cluster)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn
}

// certsLoad runs workers that send requests through east's egress until
// stop is called; it counts successes and failures.
type certsLoad struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

func startCertsLoad(addr string, workers int) *certsLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &certsLoad{stop: cancel}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := certsEchoThroughEgress(addr, fmt.Sprintf("worker %d request %d", w, i)); err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err)
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *certsLoad) finish(t *testing.T, atLeast int64) {
	t.Helper()
	l.stop()
	l.wg.Wait()
	require.Zero(t, l.failed.Load(), "failed requests (%d ok); first: %v", l.ok.Load(), l.firstErr.Load())
	require.GreaterOrEqual(t, l.ok.Load(), atLeast)
}

// certsFreshHandshakes dials west's gateway with a new QUIC connection
// every interval as east's gateway identity (from src), verifying west
// against bundles, and sends one request per connection. It records the
// leaf west served each time.
type certsFreshHandshakes struct {
	mu     sync.Mutex // guards leaves, errs
	leaves []*x509.Certificate
	errs   []error
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func startCertsFreshHandshakes(addr string, src certs.Source, bundles certs.BundleSource, interval time.Duration) *certsFreshHandshakes {
	cfg := certs.ClientConfig(certs.TLSOptions{Source: src, Bundles: bundles, NextProtos: []string{tunnel.ALPN},
		Authorize: certs.AuthorizeID(certs.ID{TrustDomain: certs.TrustDomainFor("west", domain), Path: "/gateway"})})
	ctx, cancel := context.WithCancel(context.Background())
	h := &certsFreshHandshakes{stop: cancel}
	h.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for ; ctx.Err() == nil; <-tick.C {
			conn, err := certsDial(context.Background(), addr, cfg)
			if err == nil {
				leaf := conn.ConnectionState().TLS.PeerCertificates[0]
				err = certsTunnelRequest(context.Background(), conn, "fresh")
				_ = conn.CloseWithError(0, "")
				h.mu.Lock()
				h.leaves = append(h.leaves, leaf)
				h.mu.Unlock()
			}
			if err != nil {
				h.mu.Lock()
				h.errs = append(h.errs, err)
				h.mu.Unlock()
			}
		}
	})
	return h
}

func (h *certsFreshHandshakes) finish(t *testing.T) []*x509.Certificate {
	t.Helper()
	h.stop()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Empty(t, h.errs, "fresh handshakes failed")
	return h.leaves
}

// reverifyOften re-verifies connections every 100ms, so the rotation
// tests see connections replaced within their short leaf lifetimes.
func reverifyOften(c *Config) { c.ReverifyInterval = 100 * time.Millisecond }

// TestLeafRotationUnderLoad renews both gateways' leaves every 2-3s
// (lifetime 4s) while requests flow east -> west through the tunnel:
// no request fails, east replaces its connection to west after renewing
// (so it presents its current leaf, and never relies on an expired one of
// west's), and new handshakes see new certificates.
func TestLeafRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	f := newFixture(t, reverifyOften)
	east, west := f.clusters["east"], f.clusters["west"]
	eastRot := certsRotate(t, east, east.ca, nil)
	certsRotate(t, west, west.ca, nil)
	vip := f.vip("127.0.0.1:8080")

	require.NoError(t, certsEchoThroughEgress(vip, "warm up"))
	conn := certsPeerConn(east.gw, "west")
	require.NotNil(t, conn)
	firstWestLeaf := conn.ConnectionState().TLS.PeerCertificates[0]
	dials := east.gw.metrics.handshakes.WithLabelValues("client", "ok")
	dialsBefore := testutil.ToFloat64(dials)

	load := startCertsLoad(vip, 4)
	fresh := startCertsFreshHandshakes(west.udp.LocalAddr().String(), eastRot, f.allBundles(), 250*time.Millisecond)
	// Until the first leaves have expired and two more generations were
	// served.
	require.Eventually(t, func() bool { return time.Now().After(firstWestLeaf.NotAfter.Add(rotationLifetime)) },
		4*rotationLifetime, 50*time.Millisecond)
	leaves := fresh.finish(t)
	load.finish(t, 100)

	// The connection from before the rotations was replaced (east renewed
	// its leaf) and closed; the one east tunnels through now verifies.
	require.Eventually(t, func() bool { return conn.Context().Err() != nil }, 5*time.Second, 20*time.Millisecond,
		"the connection from before the rotations is still open")
	require.Greater(t, testutil.ToFloat64(dials), dialsBefore, "east never re-dialed west")
	require.Positive(t, testutil.ToFloat64(east.gw.metrics.replaced.WithLabelValues("client", reasonRenewed)))
	require.NoError(t, certsEchoThroughEgress(vip, "after"))
	cur := certsPeerConn(east.gw, "west")
	require.NotSame(t, conn, cur)
	_, err := certs.VerifyPeer(cur.ConnectionState().TLS, east.gw.bundles, time.Now())
	require.NoError(t, err, "east tunnels through a connection whose peer no longer verifies")

	serials := map[string]bool{}
	for _, l := range leaves {
		serials[certs.SerialHex(l)] = true
	}
	require.GreaterOrEqual(t, len(serials), 3, "west leaves seen by new handshakes")
	require.False(t, serials[certs.SerialHex(firstWestLeaf)] && len(serials) == 1)
}

// TestCARotationUnderLoad rotates west's CA (publish old+new, sign with
// new, drop old) while east sends requests through the tunnel and opens
// fresh connections that verify west with the bundles east's gateway
// received from the catalog: no request and no handshake fails.
// Over 80 lines: one scenario whose steps share its servers and load.
func TestCARotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	f := newFixture(t, reverifyOften)
	east, west := f.clusters["east"], f.clusters["west"]
	oldCA := west.ca
	set, err := certs.NewCASet(oldCA, nil)
	require.NoError(t, err)
	var (
		mu              sync.Mutex // guards lastOldNotAfter
		lastOldNotAfter time.Time
	)
	eastRot := certsRotate(t, east, east.ca, nil)
	certsRotate(t, west, set, func(leaf *x509.Certificate) {
		if leaf.CheckSignatureFrom(oldCA.Cert) == nil {
			mu.Lock()
			lastOldNotAfter = leaf.NotAfter
			mu.Unlock()
		}
	})
	vip := f.vip("127.0.0.1:8080")
	require.NoError(t, certsEchoThroughEgress(vip, "warm up"))
	conn := certsPeerConn(east.gw, "west")

	load := startCertsLoad(vip, 4)
	fresh := startCertsFreshHandshakes(west.udp.LocalAddr().String(), eastRot, east.gw.bundles, 100*time.Millisecond)

	// Step 1: publish the new CA next to the old one.
	newCA, err := certs.NewCA(oldCA.TrustDomain, time.Hour, time.Now())
	require.NoError(t, err)
	both := []*x509.Certificate{oldCA.Cert, newCA.Cert}
	require.NoError(t, set.Update(oldCA, both))
	certsSetBundle(f, "west", both)
	certsWaitBundle(t, east.gw, "west", 2)
	certsWaitBundle(t, west.gw, "west", 2)

	// Step 2: sign with the new CA; west's next renewal is a new-CA leaf.
	require.NoError(t, set.Update(newCA, both))
	require.Eventually(t, func() bool {
		c, err := west.gw.tls.Certificate()
		return err == nil && c.Leaf.CheckSignatureFrom(newCA.Cert) == nil
	}, 2*rotationLifetime, 20*time.Millisecond)
	// The old CA's last leaf expires.
	mu.Lock()
	oldUntil := lastOldNotAfter
	mu.Unlock()
	require.Eventually(t, func() bool { return time.Now().After(oldUntil) }, 2*rotationLifetime, 20*time.Millisecond)

	// Step 3: drop the old CA.
	require.NoError(t, set.Update(newCA, nil))
	certsSetBundle(f, "west", []*x509.Certificate{newCA.Cert})
	certsWaitBundle(t, east.gw, "west", 1)
	// Keep going on the new CA alone for a renewal or two.
	after := time.Now().Add(rotationLifetime)
	require.Eventually(t, func() bool { return time.Now().After(after) }, 2*rotationLifetime, 20*time.Millisecond)

	leaves := fresh.finish(t)
	load.finish(t, 100)

	var byOld, byNew int
	for _, l := range leaves {
		switch {
		case l.CheckSignatureFrom(oldCA.Cert) == nil:
			byOld++
		case l.CheckSignatureFrom(newCA.Cert) == nil:
			byNew++
		default:
			t.Fatalf("west served a leaf of neither CA: %s", certs.SerialHex(l))
		}
	}
	require.Positive(t, byOld, "handshakes verified leaves of the old CA")
	require.Positive(t, byNew, "handshakes verified leaves of the new CA")

	// The old CA is gone from east's trust: a leaf it signs now is refused.
	oldLeaf, err := oldCA.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	_, _, err = certs.VerifyChain(oldLeaf.Certificate, east.gw.bundles, time.Now())
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
	// The connection from before the rotation (authenticated by an
	// old-CA leaf) is gone; east tunnels through one that verifies.
	require.Eventually(t, func() bool { return conn.Context().Err() != nil }, 5*time.Second, 20*time.Millisecond,
		"the connection from before the rotation is still open")
	require.NoError(t, certsEchoThroughEgress(vip, "after"))
	cur := certsPeerConn(east.gw, "west")
	_, err = certs.VerifyPeer(cur.ConnectionState().TLS, east.gw.bundles, time.Now())
	require.NoError(t, err)
}

// TestUntrustedPeerConnectionClosed drops east's CA from the bundles
// (as removing a compromised cluster would): west closes the connection
// east opened, with ConnCodeUntrusted, once ReplaceGrace is over, and
// east cannot open a new one, so its flows to west fail. A flow open at
// the drop carries on until then.
func TestUntrustedPeerConnectionClosed(t *testing.T) {
	const grace = 700 * time.Millisecond
	f := newFixture(t, reverifyOften, func(c *Config) { c.ReplaceGrace = grace })
	east, west := f.clusters["east"], f.clusters["west"]
	vip := f.vip("127.0.0.1:8080")
	require.NoError(t, certsEchoThroughEgress(vip, "before"))
	conn := certsPeerConn(east.gw, "west")
	require.NotNil(t, conn)

	// A flow opened before the drop.
	open, err := net.Dial("tcp", vip)
	require.NoError(t, err)
	defer open.Close()
	echo := func(msg string) error {
		_ = open.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := open.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(open, buf)
		return err
	}
	require.NoError(t, echo("ping"))

	rogue, err := certs.NewCA(east.ca.TrustDomain, time.Hour, time.Now())
	require.NoError(t, err)
	dropped := time.Now()
	certsSetBundle(f, "east", []*x509.Certificate{rogue.Cert})
	certsWaitBundle(t, west.gw, "east", 1)
	require.NoError(t, echo("still there"), "the open flow was cut before the grace")

	require.Eventually(t, func() bool { return conn.Context().Err() != nil }, 10*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(dropped), grace-100*time.Millisecond, "closed before the grace")
	var appErr *quic.ApplicationError
	require.ErrorAs(t, context.Cause(conn.Context()), &appErr)
	require.Equal(t, tunnel.ConnCodeUntrusted, appErr.ErrorCode)
	require.True(t, appErr.Remote, "west closed it")
	require.Equal(t, 1.0, testutil.ToFloat64(west.gw.metrics.replaced.WithLabelValues("server", reasonPeerUntrusted)))

	// East re-dials and is refused: no flow reaches west any more.
	require.Eventually(t, func() bool { return certsEchoThroughEgress(vip, "after") != nil }, 10*time.Second, 50*time.Millisecond)
}

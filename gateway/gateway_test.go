package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const domain = "clusterset.local"

// testCluster is a cluster with a CA and a running gateway.
type testCluster struct {
	name string
	ca   *certs.CA
	udp  *net.UDPConn
	gw   *Gateway
	stop context.CancelFunc // stops this gateway alone
	done chan struct{}      // closed when its Run returned
}

type fixture struct {
	t        *testing.T
	feed     *catalog.Feed
	entries  map[string]*causewayv1.Entry
	clusters map[string]*testCluster
	backend  net.Listener

	mu        sync.Mutex // guards listeners
	listeners map[string]net.Listener
}

// echoBackend echoes every connection until EOF, then closes its side.
func echoBackend(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln
}

// newFixture starts east and west; opts adjust each gateway's Config.
func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	f := &fixture{t: t, entries: map[string]*causewayv1.Entry{}, clusters: map[string]*testCluster{},
		listeners: map[string]net.Listener{}}
	f.backend = echoBackend(t)
	backendPort := uint32(f.backend.Addr().(*net.TCPAddr).Port)
	for _, name := range []string{"east", "west"} {
		td := certs.TrustDomainFor(name, domain)
		ca, err := certs.NewCA(td, time.Hour, time.Now())
		require.NoError(t, err)
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		f.clusters[name] = &testCluster{name: name, ca: ca, udp: udp}
		f.entries["clusters/"+name] = &causewayv1.Entry{Key: "clusters/" + name, Record: &causewayv1.Entry_Cluster{
			Cluster: &causewayv1.ClusterRecord{Name: name, Region: "r-" + name, Zone: "z-" + name, TrustDomain: td}}}
		f.entries["bundles/"+name] = &causewayv1.Entry{Key: "bundles/" + name, Record: &causewayv1.Entry_Bundle{
			Bundle: &causewayv1.TrustBundle{Cluster: name, TrustDomain: td, X509Authorities: [][]byte{ca.Cert.Raw}}}}
		f.entries["gateways/"+name+"/gw-0"] = &causewayv1.Entry{Key: "gateways/" + name + "/gw-0", Record: &causewayv1.Entry_Gateway{
			Gateway: &causewayv1.GatewayRecord{Cluster: name, Instance: "gw-0", Addresses: []string{udp.LocalAddr().String()}}}}
	}
	// west exports demo/echo on port 8080 (backend on its own port); east imports it.
	f.entries["exports/demo/echo/west"] = &causewayv1.Entry{Key: "exports/demo/echo/west", Record: &causewayv1.Entry_Export{
		Export: &causewayv1.ExportRecord{Namespace: "demo", Name: "echo", Cluster: "west",
			Type:         causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports:        []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
			Created:      timestamppb.Now(),
			ReadyPerZone: map[string]uint32{"z-west": 1},
			Endpoints: []*causewayv1.Endpoint{{Address: "127.0.0.1", Ready: true, Zone: "z-west",
				TargetPorts: map[string]uint32{"http": backendPort}}}}}}
	f.entries["imports/east/demo/echo"] = &causewayv1.Entry{Key: "imports/east/demo/echo", Record: &causewayv1.Entry_Import{
		Import: &causewayv1.ImportRecord{Namespace: "demo", Name: "echo", Cluster: "east",
			Type:  causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
			Ips:   []string{"127.0.0.1"}, Clusters: []string{"west"}}}}
	f.feed = catalog.NewFeed()
	f.feed.Publish(catalog.NewView(f.entries, 1))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, c := range f.clusters {
		cert, err := c.ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
		require.NoError(t, err)
		cfg := Config{Cluster: c.name, ShutdownGrace: 100 * time.Millisecond}
		for _, o := range opts {
			o(&cfg)
		}
		gw, err := New(cfg, f.feed, certs.NewStaticSource(cert))
		require.NoError(t, err)
		c.gw = gw
		cctx, stop := context.WithCancel(ctx)
		c.stop, c.done = stop, make(chan struct{})
		wg.Go(func() { defer close(c.done); _ = gw.Run(cctx, c.udp, f.listen) })
		select {
		case <-gw.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("gateway not ready")
		}
	}
	return f
}

// listen stands in for binding a VIP: it listens on an ephemeral port and
// remembers it under the requested address.
// Addresses of TEST-NET-1 (192.0.2.0/24, on no interface) are bound for
// real, so binding them fails as a VIP that is not routed locally does.
func (f *fixture) listen(ctx context.Context, addr string) (net.Listener, error) {
	if strings.HasPrefix(addr, "192.0.2.") {
		return DefaultListen(ctx, addr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.listeners[addr] = ln
	f.mu.Unlock()
	return ln, nil
}

func (f *fixture) vip(addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ln, ok := f.listeners[addr]
	require.True(f.t, ok, "no egress listener for %s", addr)
	return ln.Addr().String()
}

func TestEgressToPeerWithHalfClose(t *testing.T) {
	f := newFixture(t)
	c, err := net.Dial("tcp", f.vip("127.0.0.1:8080"))
	require.NoError(t, err)
	defer c.Close()
	payload := bytes.Repeat([]byte("causeway "), 100_000) // ~900 KB, many QUIC frames
	go func() {
		_, _ = c.Write(payload)
		_ = c.(*net.TCPConn).CloseWrite() // FIN must reach the backend through the stream
	}()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(c) // EOF only after the backend saw FIN and closed
	require.NoError(t, err)
	require.Equal(t, len(payload), len(got))
	require.True(t, bytes.Equal(payload, got))
}

// peerConn dials west's gateway as a client with the given certificate.
func (f *fixture) peerConn(t *testing.T, cert *tls.Certificate, bundles certs.BundleSource) (*quic.Conn, error) {
	west := f.clusters["west"]
	cfg := certs.ClientConfig(certs.TLSOptions{Source: certs.NewStaticSource(cert), Bundles: bundles,
		NextProtos: []string{tunnel.ALPN}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return quic.DialAddr(ctx, west.udp.LocalAddr().String(), cfg, tunnel.Config{}.QUIC())
}

func (f *fixture) allBundles() *certs.BundleSet {
	b := certs.NewBundleSet()
	for _, c := range f.clusters {
		b.Set(c.ca.TrustDomain, []*x509.Certificate{c.ca.Cert})
	}
	return b
}

func header(source string) *causewayv1.StreamHeader {
	return &causewayv1.StreamHeader{Version: tunnel.HeaderVersion, Namespace: "demo", Service: "echo", Port: 8080,
		Protocol: causewayv1.Protocol_PROTOCOL_TCP, SourceCluster: source}
}

func TestIngressRefusalsKeepTheConnection(t *testing.T) {
	f := newFixture(t)
	cert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	conn, err := f.peerConn(t, cert, f.allBundles())
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")

	exchange := func(t *testing.T, write func(s *quic.Stream)) *causewayv1.StreamResponse {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := conn.OpenStreamSync(ctx)
		require.NoError(t, err)
		require.NoError(t, s.SetDeadline(time.Now().Add(5*time.Second)))
		write(s)
		resp, err := tunnel.ReadResponse(s, 0)
		require.NoError(t, err)
		return resp
	}
	tests := []struct {
		name  string
		write func(s *quic.Stream)
		want  causewayv1.StreamCode
	}{
		{"garbage frame", func(s *quic.Stream) { _, _ = s.Write([]byte{0x00, 0x03, 0xff, 0xff, 0xff}) }, causewayv1.StreamCode_STREAM_CODE_BAD_HEADER},
		{"oversized frame", func(s *quic.Stream) { _, _ = s.Write([]byte{0xff, 0xff}) }, causewayv1.StreamCode_STREAM_CODE_BAD_HEADER},
		{"spoofed source cluster", func(s *quic.Stream) { require.NoError(t, tunnel.WriteFrame(s, header("west"))) }, causewayv1.StreamCode_STREAM_CODE_FORBIDDEN},
		{"unknown service", func(s *quic.Stream) {
			h := header("east")
			h.Service = "nope"
			require.NoError(t, tunnel.WriteFrame(s, h))
		}, causewayv1.StreamCode_STREAM_CODE_UNKNOWN_SERVICE},
		{"port not exposed", func(s *quic.Stream) {
			h := header("east")
			h.Port = 9999
			require.NoError(t, tunnel.WriteFrame(s, h))
		}, causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED},
		{"valid", func(s *quic.Stream) { require.NoError(t, tunnel.WriteFrame(s, header("east"))) }, causewayv1.StreamCode_STREAM_CODE_OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := exchange(t, tc.write)
			require.Equal(t, tc.want, resp.GetCode(), "message: %s", resp.GetMessage())
		})
	}
	// After every refusal the same connection still carries a working flow.
	require.NoError(t, conn.Context().Err())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	require.NoError(t, tunnel.WriteFrame(s, header("east")))
	resp, err := tunnel.ReadResponse(s, 0)
	require.NoError(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, resp.GetCode())
	_, err = s.Write([]byte("ping " + strconv.Itoa(42)))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	require.Equal(t, "ping 42", string(got))
}

func TestIngressRejectsUntrustedPeer(t *testing.T) {
	f := newFixture(t)
	rogue, err := certs.NewCA(certs.TrustDomainFor("east", domain), time.Hour, time.Now())
	require.NoError(t, err)
	cert, err := rogue.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	// The rogue client trusts everyone; west must still refuse it.
	// In TLS 1.3 the client may finish its handshake before the server has
	// checked the client certificate; the server then closes the connection.
	conn, err := f.peerConn(t, cert, f.allBundles())
	if err == nil {
		select {
		case <-conn.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("west kept a connection from a rogue east CA open")
		}
		_, err = conn.OpenStream()
		require.Error(t, err)
	}
	require.Error(t, err)
}

func TestCandidatesOrderAndSkips(t *testing.T) {
	entries := map[string]*causewayv1.Entry{}
	add := func(e *causewayv1.Entry) { entries[e.GetKey()] = e }
	cluster := func(name, region, zone string) {
		add(&causewayv1.Entry{Key: "clusters/" + name, Record: &causewayv1.Entry_Cluster{Cluster: &causewayv1.ClusterRecord{Name: name, Region: region, Zone: zone}}})
		add(&causewayv1.Entry{Key: "gateways/" + name + "/0", Record: &causewayv1.Entry_Gateway{Gateway: &causewayv1.GatewayRecord{Cluster: name, Instance: "0"}}})
	}
	export := func(cluster string, ready uint32, port uint32) {
		add(&causewayv1.Entry{Key: "exports/demo/echo/" + cluster, Record: &causewayv1.Entry_Export{Export: &causewayv1.ExportRecord{
			Namespace: "demo", Name: "echo", Cluster: cluster, ReadyPerZone: map[string]uint32{"z": ready},
			Ports: []*causewayv1.ServicePort{{Port: port, Protocol: causewayv1.Protocol_PROTOCOL_TCP}}}}})
	}
	cluster("self", "r1", "z1")
	cluster("samezone", "r1", "z1")
	cluster("sameregion", "r1", "z2")
	cluster("far", "r2", "z3")
	cluster("empty", "r1", "z1")
	cluster("drained", "r1", "z1")
	cluster("otherport", "r1", "z1")
	for _, c := range []string{"self", "samezone", "sameregion", "far", "drained"} {
		export(c, 1, 80)
	}
	export("empty", 0, 80)
	export("otherport", 1, 81)
	export("nogateway", 1, 80)
	add(&causewayv1.Entry{Key: "drain/drained", Record: &causewayv1.Entry_Drain{Drain: &causewayv1.DrainRecord{Cluster: "drained"}}})

	got := Candidates(catalog.NewView(entries, 1), "self", catalog.ServiceKey{Namespace: "demo", Name: "echo"}, 80)
	var order []string
	skips := map[string]string{}
	for _, c := range got {
		if c.Skip == "" {
			order = append(order, c.Cluster)
		} else {
			skips[c.Cluster] = c.Skip
		}
	}
	require.Equal(t, []string{"self", "samezone", "sameregion", "far"}, order)
	require.Equal(t, map[string]string{
		"empty":     "no ready endpoints",
		"drained":   "drained",
		"otherport": "port not exposed there",
		"nogateway": "no live gateway (leases expired)",
	}, skips)
}

package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Builders of the egress, outlier and explain tests: any number of
// clusters, each with any number of real gateway instances over QUIC on
// 127.0.0.1, sharing one catalog feed and one fake clock.

var egressKey = catalog.ServiceKey{Namespace: "demo", Name: "echo"}

const egressPort = 8080

// egressVIP is the import address the fixture's importing cluster uses.
const egressVIP = "127.0.0.1:8080"

// egressFakeClock is a Clock moved by Advance.
type egressFakeClock struct {
	mu     sync.Mutex // guards now, timers
	now    time.Time
	timers []*egressFakeTimer
}

type egressFakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newEgressFakeClock() *egressFakeClock {
	return &egressFakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *egressFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *egressFakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &egressFakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock and runs the timers that came due, in order.
func (c *egressFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, rest []*egressFakeTimer
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// egressLogOut receives the fixture gateways' logs; point it at os.Stderr to debug.
var egressLogOut io.Writer = io.Discard

// egressClusterSpec describes a fixture cluster.
type egressClusterSpec struct {
	name, region, zone string
	instances          int // gateway instances
}

type egressInstance struct {
	cluster, name string
	udp           *net.UDPConn
	gw            *Gateway
	cancel        context.CancelFunc
	done          chan struct{}
}

type egressFixture struct {
	t     *testing.T
	feed  *catalog.Feed
	clock *egressFakeClock
	cas   map[string]*certs.CA

	mu        sync.Mutex // guards entries, rev, instances, listeners
	entries   map[string]*causewayv1.Entry
	rev       int64
	instances map[string]*egressInstance // by cluster/instance
	listeners map[string]net.Listener    // by requested address, per gateway
	// routes and l7, if set before start, are every gateway's L7 routes
	// and limits.
	routes RouteSource
	l7     L7Config
	// maxStreams, if set, caps the concurrent streams a peer may open.
	maxStreams int64
	// sources and authorization, if set before start, are the identity
	// resolver and policies of each cluster's gateways.
	sources       map[string]authz.SourceResolver
	authorization map[string]Authorizer
}

// newEgressFixture creates the clusters' CAs and catalog records; start
// gateways with start after adding exports and imports.
func newEgressFixture(t *testing.T, specs ...egressClusterSpec) *egressFixture {
	t.Helper()
	f := &egressFixture{t: t, feed: catalog.NewFeed(), clock: newEgressFakeClock(), cas: map[string]*certs.CA{},
		entries: map[string]*causewayv1.Entry{}, instances: map[string]*egressInstance{}, listeners: map[string]net.Listener{}}
	for _, s := range specs {
		td := certs.TrustDomainFor(s.name, domain)
		ca, err := certs.NewCA(td, time.Hour, time.Now())
		require.NoError(t, err)
		f.cas[s.name] = ca
		f.entries["clusters/"+s.name] = &causewayv1.Entry{Key: "clusters/" + s.name, Record: &causewayv1.Entry_Cluster{
			Cluster: &causewayv1.ClusterRecord{Name: s.name, Region: s.region, Zone: s.zone, TrustDomain: td}}}
		f.entries["bundles/"+s.name] = &causewayv1.Entry{Key: "bundles/" + s.name, Record: &causewayv1.Entry_Bundle{
			Bundle: &causewayv1.TrustBundle{Cluster: s.name, TrustDomain: td, X509Authorities: [][]byte{ca.Cert.Raw}}}}
		for i := range s.instances {
			name := fmt.Sprintf("gw-%d", i)
			udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = udp.Close() })
			f.instances[s.name+"/"+name] = &egressInstance{cluster: s.name, name: name, udp: udp}
			f.entries["gateways/"+s.name+"/"+name] = egressGatewayEntry(s.name, name, udp.LocalAddr().String())
		}
	}
	return f
}

func egressGatewayEntry(cluster, instance, addr string) *causewayv1.Entry {
	return &causewayv1.Entry{Key: "gateways/" + cluster + "/" + instance, Record: &causewayv1.Entry_Gateway{
		Gateway: &causewayv1.GatewayRecord{Cluster: cluster, Instance: instance, Addresses: []string{addr}}}}
}

// export makes cluster export demo/echo on egressPort with one ready
// endpoint at backend (host:port).
func (f *egressFixture) export(cluster, backend string) {
	host, port, err := net.SplitHostPort(backend)
	require.NoError(f.t, err)
	var target uint32
	_, err = fmt.Sscan(port, &target)
	require.NoError(f.t, err)
	key := "exports/demo/echo/" + cluster
	f.update(func(e map[string]*causewayv1.Entry) {
		e[key] = &causewayv1.Entry{Key: key, Record: &causewayv1.Entry_Export{Export: &causewayv1.ExportRecord{
			Namespace: "demo", Name: "echo", Cluster: cluster, Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports:   []*causewayv1.ServicePort{{Name: "http", Port: egressPort, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
			Created: timestamppb.Now(), ReadyPerZone: map[string]uint32{"z": 1},
			Endpoints: []*causewayv1.Endpoint{{Address: host, Ready: true, Zone: "z",
				TargetPorts: map[string]uint32{"http": target}}}}}}
	})
}

// importTo makes cluster import demo/echo on egressVIP.
func (f *egressFixture) importTo(cluster string) {
	key := "imports/" + cluster + "/demo/echo"
	f.update(func(e map[string]*causewayv1.Entry) {
		e[key] = &causewayv1.Entry{Key: key, Record: &causewayv1.Entry_Import{Import: &causewayv1.ImportRecord{
			Namespace: "demo", Name: "echo", Cluster: cluster, Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: egressPort, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
			Ips:   []string{"127.0.0.1"}}}}
	})
}

// update publishes the entries changed by mutate as the next revision.
func (f *egressFixture) update(mutate func(map[string]*causewayv1.Entry)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	entries := maps.Clone(f.entries)
	mutate(entries)
	f.entries = entries
	f.rev++
	f.feed.Publish(catalog.NewView(maps.Clone(entries), f.rev))
}

// start runs every gateway instance until the test ends.
func (f *egressFixture) start() {
	f.t.Helper()
	log := slog.New(slog.NewTextHandler(egressLogOut, nil))
	for _, in := range f.instances {
		cert, err := f.cas[in.cluster].NewLeafKeyPair("gateway", time.Hour, time.Now())
		require.NoError(f.t, err)
		cfg := Config{Cluster: in.cluster, ShutdownGrace: 100 * time.Millisecond, Logger: log, Clock: f.clock, Routes: f.routes, L7: f.l7}
		cfg.Tunnel.MaxIncomingStreams = f.maxStreams
		cfg.Sources, cfg.Authorization = f.sources[in.cluster], f.authorization[in.cluster]
		gw, err := New(cfg, f.feed, certs.NewStaticSource(cert))
		require.NoError(f.t, err)
		ctx, cancel := context.WithCancel(context.Background())
		in.gw, in.cancel, in.done = gw, cancel, make(chan struct{})
		prefix := in.cluster + "/" + in.name + " "
		go func() {
			defer close(in.done)
			_ = gw.Run(ctx, in.udp, func(ctx context.Context, addr string) (net.Listener, error) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err == nil {
					f.mu.Lock()
					f.listeners[prefix+addr] = ln
					f.mu.Unlock()
				}
				return ln, err
			})
		}()
		f.t.Cleanup(func() { cancel(); <-in.done })
		select {
		case <-gw.Ready():
		case <-time.After(10 * time.Second):
			f.t.Fatalf("gateway %s/%s not ready", in.cluster, in.name)
		}
	}
}

// gw returns a running gateway instance ("cluster/gw-N").
func (f *egressFixture) gw(id string) *Gateway {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	require.True(f.t, ok, "no instance %s", id)
	return in.gw
}

// vip returns the real address of instance id's egress listener for addr.
func (f *egressFixture) vip(id, addr string) string {
	f.t.Helper()
	var got string
	require.Eventually(f.t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		ln, ok := f.listeners[id+" "+addr]
		if ok {
			got = ln.Addr().String()
		}
		return ok
	}, 10*time.Second, 5*time.Millisecond, "no egress listener of %s for %s", id, addr)
	return got
}

// egressTaggedEcho serves on 127.0.0.1: every connection gets tag + " " and
// then the echo of its bytes until EOF.
func egressTaggedEcho(t *testing.T, tag string) string {
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
				if _, err := io.WriteString(c, tag+" "); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln.Addr().String()
}

// egressRefusingAddr returns a 127.0.0.1 address where nothing listens.
func egressRefusingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// egressRequest sends msg through an egress listener, half-closes, and
// returns everything the backend sent back.
func egressRequest(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// egressServedBy returns the tag of the backend that answered egressRequest.
func egressServedBy(t *testing.T, addr, msg string) string {
	t.Helper()
	got, err := egressRequest(addr, msg)
	require.NoError(t, err)
	tag, rest, ok := strings.Cut(got, " ")
	require.True(t, ok, "answer %q", got)
	require.Equal(t, msg, rest)
	return tag
}

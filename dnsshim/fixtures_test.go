package dnsshim

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// source is a swappable ViewSource.
type source struct{ v atomic.Pointer[catalog.View] }

func (s *source) View() *catalog.View { return s.v.Load() }

func entry(key string, rec any) *causewayv1.Entry {
	e := &causewayv1.Entry{Key: key}
	switch r := rec.(type) {
	case *causewayv1.ImportRecord:
		e.Record = &causewayv1.Entry_Import{Import: r}
	case *causewayv1.ExportRecord:
		e.Record = &causewayv1.Entry_Export{Export: r}
	case *causewayv1.GatewayRecord:
		e.Record = &causewayv1.Entry_Gateway{Gateway: r}
	case *causewayv1.DrainRecord:
		e.Record = &causewayv1.Entry_Drain{Drain: r}
	}
	return e
}

// testView is the clusterset as west sees it:
//   - echo: ClusterSetIP 10.2.0.5, a named (http/8080) and an unnamed port;
//   - dual: ClusterSetIP with an IPv4 and an IPv6 address, named TCP and
//     UDP ports;
//   - near, idle, parked: local-direct, exported by west (ready; none
//     ready; drained in west);
//   - db: headless, exported by east with headlessEndpoints ready pods
//     db-0.. and one unready;
//   - cache: headless, exported by east (c-0), north (a pod without
//     hostname, an IPv6 pod), south (no live gateway: its leases expired)
//     and central (drained);
//   - big: headless with 60 ready pods in east (does not fit 512 bytes);
//   - gone: headless, no endpoint anywhere.
func testView(headlessEndpoints int) *catalog.View {
	tcp, udp := causewayv1.Protocol_PROTOCOL_TCP, causewayv1.Protocol_PROTOCOL_UDP
	headless := causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	es := map[string]*causewayv1.Entry{}
	add := func(e *causewayv1.Entry) { es[e.GetKey()] = e }
	imp := func(name string, rec *causewayv1.ImportRecord) {
		rec.Namespace, rec.Name, rec.Cluster = "demo", name, "west"
		add(entry("imports/west/demo/"+name, rec))
	}
	export := func(name, cluster string, eps ...*causewayv1.Endpoint) {
		add(entry("exports/demo/"+name+"/"+cluster, &causewayv1.ExportRecord{Namespace: "demo", Name: name, Cluster: cluster, Endpoints: eps}))
	}
	ep := func(addr, host string) *causewayv1.Endpoint {
		return &causewayv1.Endpoint{Address: addr, Hostname: host, Ready: true}
	}
	for _, c := range []string{"east", "north", "central"} {
		add(entry("gateways/"+c+"/0", &causewayv1.GatewayRecord{Cluster: c, Instance: "0"}))
	}

	imp("echo", &causewayv1.ImportRecord{Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{"10.2.0.5"},
		Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: tcp}, {Port: 9090, Protocol: tcp}}})
	add(entry("imports/east/demo/echo", &causewayv1.ImportRecord{Namespace: "demo", Name: "echo", Cluster: "east",
		Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{"10.1.0.5"}}))
	imp("dual", &causewayv1.ImportRecord{Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{"10.2.0.7", "fd00::7"},
		Ports: []*causewayv1.ServicePort{{Name: "http", Port: 80, Protocol: tcp}, {Name: "dns", Port: 53, Protocol: udp}, {Port: 9000}}})

	imp("db", &causewayv1.ImportRecord{Type: headless, Ports: []*causewayv1.ServicePort{{Name: "pg", Port: 5432, Protocol: tcp}}})
	var eps []*causewayv1.Endpoint
	for i := 0; i < headlessEndpoints; i++ {
		eps = append(eps, ep(fmt.Sprintf("10.9.%d.%d", i/250, i%250+1), fmt.Sprintf("db-%d", i)))
	}
	eps = append(eps, &causewayv1.Endpoint{Address: "10.9.99.99", Hostname: "db-unready", Ready: false})
	export("db", "east", eps...)

	imp("cache", &causewayv1.ImportRecord{Type: headless, Ports: []*causewayv1.ServicePort{{Name: "redis", Port: 6379}}})
	export("cache", "east", ep("10.7.0.1", "c-0"))
	export("cache", "north", ep("10.7.1.1", ""), ep("fd00::71", "c-v6"))
	export("cache", "south", ep("10.7.2.1", "c-south"))
	export("cache", "central", ep("10.7.3.1", "c-central"))
	add(entry("drain/central", &causewayv1.DrainRecord{Cluster: "central"}))

	imp("big", &causewayv1.ImportRecord{Type: headless})
	var bigEps []*causewayv1.Endpoint
	for i := range 60 {
		bigEps = append(bigEps, ep(fmt.Sprintf("10.6.0.%d", i+1), fmt.Sprintf("b-%d", i)))
	}
	export("big", "east", bigEps...)

	imp("gone", &causewayv1.ImportRecord{Type: headless})

	// local-direct: "near" is exported by west itself with ready endpoints
	// (answer its ClusterIP); "idle" has none ready and "parked" is drained
	// in west (answer the clusterset IP).
	for i, name := range []string{"near", "idle", "parked"} {
		ready := uint32(1)
		if name == "idle" {
			ready = 0
		}
		imp(name, &causewayv1.ImportRecord{Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{fmt.Sprintf("10.2.1.%d", i+1)}})
		add(entry("exports/demo/"+name+"/west", &causewayv1.ExportRecord{Namespace: "demo", Name: name, Cluster: "west",
			Routing: causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT, ClusterIp: fmt.Sprintf("10.96.0.%d", i+1),
			ReadyPerZone: map[string]uint32{"z": ready}}))
	}
	add(entry("drain/west/demo/parked", &causewayv1.DrainRecord{Cluster: "west", Namespace: "demo", Name: "parked"}))
	return catalog.NewView(es, 42)
}

// startServer serves west's view of src on a fresh loopback port (UDP and
// TCP) until the test ends.
func startServer(t testing.TB, src ViewSource) (string, context.CancelFunc, chan error) {
	t.Helper()
	return startServerWith(t, Config{Cluster: "west"}, src)
}

func startServerWith(t testing.TB, cfg Config, src ViewSource) (string, context.CancelFunc, chan error) {
	t.Helper()
	s, err := New(cfg, src)
	require.NoError(t, err)
	pc, ln := listenPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String(), cancel, done
}

// listenPair binds UDP and TCP on the same free loopback port; the UDP
// port may be taken for TCP, so it tries a few.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

func query(t testing.TB, addr, transport, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	return exchange(t, addr, transport, m)
}

func exchange(t testing.TB, addr, transport string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: transport, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return r
}

// rawExchange sends pkt as is (over TCP with its length prefix) and
// returns the first answer, unpacked.
func rawExchange(t testing.TB, addr, transport string, pkt []byte) *dns.Msg {
	t.Helper()
	conn, err := net.Dial(transport, addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 65535)
	var n int
	if transport == "tcp" {
		_, err = conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))))
		require.NoError(t, err)
		_, err = conn.Write(pkt)
		require.NoError(t, err)
		_, err = io.ReadFull(conn, buf[:2])
		require.NoError(t, err)
		n = int(binary.BigEndian.Uint16(buf))
		_, err = io.ReadFull(conn, buf[:n])
	} else {
		_, err = conn.Write(pkt)
		require.NoError(t, err)
		n, err = conn.Read(buf)
	}
	require.NoError(t, err)
	r := new(dns.Msg)
	require.NoError(t, r.Unpack(buf[:n]))
	return r
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); ok {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(out)
	return out
}

package component_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// propDNSToken is the join token of west's DNS shim.
const propDNSToken = "dns-token-0123456789abcdef012345678"

// propagation bounds how long a change takes to reach DNS answers: a
// static-file check (1s), an etcd write, west's catalog delta.
const propagation = 10 * time.Second

// TestDNSAnswersFollowTheFederation runs the real path through the
// component wiring: east's federator (RunFederatorOn) publishes the
// exports of its static file into etcd, west's federator mirrors them and
// serves Catalog.Watch, and west's DNS shim (RunDNSShimOn), with a
// certificate obtained by join token, answers from west's catalog. Every
// change must show in the answers over UDP and over TCP within the
// propagation time.
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestDNSAnswersFollowTheFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, two federators and a DNS shim")
	}
	etcd, cli := etcdtest.Start(t)
	east, west := newPropCluster(t, "east"), newPropCluster(t, "west")
	east.startFederator(t, etcd.Endpoint(), "127.98.1.0/24", west)
	west.startFederator(t, etcd.Endpoint(), "127.98.2.0/24", east)

	// east's gateway, as Catalog.AnnounceGateway records it (a record on a
	// lease of federator.GatewayLeaseTTL), but written here so that the
	// test can let the lease expire: a real gateway (RunGatewayOn) that
	// stops withdraws its record at once, it cannot crash in process.
	st := store.New(cli, store.Options{})
	announce := func() *concurrency.Session {
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(int(federator.GatewayLeaseTTL.Seconds())))
		require.NoError(t, err)
		t.Cleanup(func() { _ = sess.Close() })
		require.NoError(t, st.RegisterGateway(t.Context(), sess,
			&causewayv1.GatewayRecord{Cluster: "east", Instance: "gw-0", Addresses: []string{"127.0.0.1:1"}}))
		return sess
	}
	gw := announce()

	shim := west.startDNSShim(t)
	const (
		echo    = "echo.demo.svc.clusterset.local."
		echoSRV = "_http._tcp." + echo
		db      = "db.demo.svc.clusterset.local."
		nx      = "NXDOMAIN"
		echoVIP = "NOERROR 127.98.2.1" // west's clusterset IP of echo
	)
	shim.eventually(t, "nothing exported", propagation, echo, dns.TypeA, nx)

	east.writeExports(t, `version: 1
services:
- {namespace: demo, name: echo, ports: [{name: http, port: 80}], endpoints: [{address: 127.98.8.1}]}
- namespace: demo
  name: db
  type: Headless
  ports: [{name: pg, port: 5432}]
  endpoints: [{address: 127.98.9.1}, {address: 127.98.9.2}]
`)
	shim.eventually(t, "export added", propagation, echo, dns.TypeA, echoVIP)
	shim.eventually(t, "export added: its port", propagation, echoSRV, dns.TypeSRV, "NOERROR 80 "+echo)
	shim.eventually(t, "headless endpoints", propagation, db, dns.TypeA, "NOERROR 127.98.9.1 127.98.9.2")

	east.writeExports(t, `version: 1
services:
- {namespace: demo, name: echo, ports: [{name: http, port: 8080}], endpoints: [{address: 127.98.8.1}]}
- namespace: demo
  name: db
  type: Headless
  ports: [{name: pg, port: 5432}]
  endpoints: [{address: 127.98.9.1}, {address: 127.98.9.2}]
`)
	shim.eventually(t, "port changed", propagation, echoSRV, dns.TypeSRV, "NOERROR 8080 "+echo)
	shim.eventually(t, "port changed: the clusterset IP kept", propagation, echo, dns.TypeA, echoVIP)

	east.writeExports(t, `version: 1
services:
- {namespace: demo, name: echo, ports: [{name: http, port: 8080}], endpoints: [{address: 127.98.8.1}]}
- namespace: demo
  name: db
  type: Headless
  ports: [{name: pg, port: 5432}]
  endpoints: [{address: 127.98.9.1, ready: false}, {address: 127.98.9.2}]
`)
	shim.eventually(t, "endpoint unready", propagation, db, dns.TypeA, "NOERROR 127.98.9.2")

	// An operator drains east through east's Admin API (causeway drain).
	adm := east.adminClient(t)
	_, err := adm.Drain(t.Context(), &causewayv1.DrainRequest{Cluster: "east", Reason: "test"})
	require.NoError(t, err)
	shim.eventually(t, "east drained", propagation, db, dns.TypeA, nx)
	_, err = adm.Undrain(t.Context(), &causewayv1.UndrainRequest{Cluster: "east"})
	require.NoError(t, err)
	shim.eventually(t, "east undrained", propagation, db, dns.TypeA, "NOERROR 127.98.9.2")

	// east's gateway dies without revoking its lease (a crash, a
	// partition): its headless endpoints leave the answers once the lease
	// expires, plus the propagation time. The ClusterSetIP answer stays: it
	// is west's own VIP, and west's gateway routes around the dead cluster.
	gw.Orphan()
	dead := time.Now()
	shim.eventually(t, "east's gateway lease expired", federator.GatewayLeaseTTL+propagation, db, dns.TypeA, nx)
	require.Less(t, time.Since(dead), federator.GatewayLeaseTTL+3*time.Second, "dropped within the lease TTL and the propagation time")
	shim.eventually(t, "ClusterSetIP kept", propagation, echo, dns.TypeA, echoVIP)
	announce()
	shim.eventually(t, "east's gateway back", propagation, db, dns.TypeA, "NOERROR 127.98.9.2")

	east.writeExports(t, "version: 1\nservices: []\n")
	shim.eventually(t, "export removed", propagation, echo, dns.TypeA, nx)
	shim.eventually(t, "export removed: its port", propagation, echoSRV, dns.TypeSRV, nx)
	shim.eventually(t, "headless removed", propagation, db, dns.TypeA, nx)
}

// propCluster is a cluster of TestDNSAnswersFollowTheFederation: its CA
// directory, static exports file and join tokens, and the addresses its
// federator serves on once started.
type propCluster struct {
	name, dir, caDir string
	ca               *certs.CA
	exports          string // static exports file
	grpc, boot       string // the federator's gRPC and bootstrap addresses
}

// newPropCluster creates name's CA directory (certs.InitCADir) and an
// empty static exports file.
func newPropCluster(t *testing.T, name string) *propCluster {
	t.Helper()
	c := &propCluster{name: name, dir: filepath.Join(t.TempDir(), name)}
	c.caDir, c.exports = filepath.Join(c.dir, "ca"), filepath.Join(c.dir, "exports.yaml")
	var err error
	c.ca, err = certs.InitCADir(c.caDir, certs.TrustDomainFor(name, component.DefaultDomain), 24*time.Hour, time.Now(), false)
	require.NoError(t, err)
	c.writeExports(t, "version: 1\nservices: []\n")
	return c
}

// write writes a file of c's directory and returns its path.
func (c *propCluster) write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(c.dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// writeExports replaces c's static exports file at once (a rename), so
// the federator never reads half of it.
func (c *propCluster) writeExports(t *testing.T, doc string) {
	t.Helper()
	tmp := c.write(t, "exports.yaml.tmp", doc)
	require.NoError(t, os.Rename(tmp, c.exports))
}

// startFederator runs c's federator with component.RunFederatorOn on
// listeners bound on 127.0.0.1:0, against etcd, with vips as its VIP
// range and the CAs of peers pinned, and waits until it is ready.
func (c *propCluster) startFederator(t *testing.T, etcd, vips string, peers ...*propCluster) {
	t.Helper()
	ls := component.FederatorListeners{GRPC: listenTCP(t), Bootstrap: listenTCP(t), HTTP: listenTCP(t)}
	t.Cleanup(ls.Close) // in case it never runs
	c.grpc, c.boot = ls.GRPC.Addr().String(), ls.Bootstrap.Addr().String()
	httpAddr := ls.HTTP.Addr().String()
	var pins strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&pins, "  %s: %q\n", p.name, certs.Fingerprint(p.ca.Cert))
	}
	cfg, err := component.LoadFederatorConfig(c.write(t, "federator.yaml", fmt.Sprintf(`cluster: %s
etcd: {endpoints: [%q]}
listen: {grpc: %q, bootstrap: %q, http: %q}
caDir: %s
vipRanges: [%q]
exports: {static: %s}
signing: {joinTokensFile: %s}
trustPins:
%s`, c.name, etcd, c.grpc, c.boot, httpAddr, c.caDir, vips, c.exports,
		c.write(t, "tokens.yaml", propDNSToken+": dnsshim\n"), pins.String())))
	require.NoError(t, err)
	log := runComponent(t, c.name+" federator", func(ctx context.Context, log *slog.Logger) error {
		return component.RunFederatorOn(ctx, cfg, log, ls)
	})
	waitHTTP(t, "http://"+httpAddr+"/readyz", log)
}

// startDNSShim runs c's DNS shim with component.RunDNSShimOn on UDP and
// TCP sockets of one 127.0.0.1 port, with its join token, and waits until
// it is ready (its certificate obtained, its catalog synced).
func (c *propCluster) startDNSShim(t *testing.T) propShim {
	t.Helper()
	udp, tcp := listenDNS(t)
	ls := component.DNSShimListeners{UDP: udp, TCP: tcp, HTTP: listenTCP(t)}
	t.Cleanup(ls.Close) // in case it never runs
	addr, httpAddr := udp.LocalAddr().String(), ls.HTTP.Addr().String()
	cfg, err := component.LoadDNSShimConfig(c.write(t, "dnsshim.yaml", fmt.Sprintf(`cluster: %s
federator: %q
bootstrap: %q
caFile: %s
tokenFile: %s
listen: %q
http: %q
`, c.name, c.grpc, c.boot, filepath.Join(c.caDir, certs.BundleFile), c.write(t, "dnsshim.token", propDNSToken+"\n"), addr, httpAddr)))
	require.NoError(t, err)
	log := runComponent(t, c.name+" dnsshim", func(ctx context.Context, log *slog.Logger) error {
		return component.RunDNSShimOn(ctx, cfg, log, ls)
	})
	waitHTTP(t, "http://"+httpAddr+"/readyz", log)
	return propShim{addr: addr}
}

// adminClient is an Admin client of c's federator with c's admin identity.
func (c *propCluster) adminClient(t *testing.T) causewayv1.AdminClient {
	t.Helper()
	td := certs.TrustDomainFor(c.name, component.DefaultDomain)
	leaf, err := c.ca.NewLeafKeyPair("admin", time.Hour, time.Now())
	require.NoError(t, err)
	bundles := certs.NewBundleSet()
	bundles.Set(td, []*x509.Certificate{c.ca.Cert})
	fedID, err := certs.NewID(td, "federator")
	require.NoError(t, err)
	conn, err := component.DialFederator(c.grpc, certs.NewStaticSource(leaf), bundles, fedID)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return causewayv1.NewAdminClient(conn)
}

// runComponent runs run until the test ends, then cancels it and waits
// for it to return without an error; it logs the component's log if the
// test failed.
func runComponent(t *testing.T, what string, run func(context.Context, *slog.Logger) error) *syncBuf {
	t.Helper()
	logs := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "%s", what)
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop", what)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", what, logs)
		}
	})
	return logs
}

// listenTCP listens on a free 127.0.0.1 port until the test ends.
func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// listenDNS binds UDP and TCP on one free 127.0.0.1 port (the shim's
// listen address); the UDP port may be taken for TCP, so it tries a few.
func listenDNS(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			t.Cleanup(func() { _ = pc.Close(); _ = ln.Close() })
			return pc, ln
		}
		_ = pc.Close()
		lastErr = err
	}
	t.Fatalf("no 127.0.0.1 port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

// propShim queries a DNS shim over real UDP and TCP.
type propShim struct{ addr string }

// answer is the shim's answer to name's qtype over transport, as "RCODE"
// followed by the sorted answer data: the addresses of A records, "port
// target" of SRV records.
func (s propShim) answer(transport, name string, qtype uint16) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Net: transport, Timeout: 3 * time.Second}).Exchange(m, s.addr)
	if err != nil {
		return "", fmt.Errorf("query %s %s over %s: %w", name, dns.TypeToString[qtype], transport, err)
	}
	var data []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			data = append(data, rr.A.String())
		case *dns.SRV:
			data = append(data, fmt.Sprintf("%d %s", rr.Port, rr.Target))
		default:
			data = append(data, rr.String())
		}
	}
	slices.Sort(data)
	return strings.Join(append([]string{dns.RcodeToString[r.Rcode]}, data...), " "), nil
}

// eventually waits at most within until name's qtype is answered want
// over UDP and over TCP alike.
func (s propShim) eventually(t *testing.T, what string, within time.Duration, name string, qtype uint16, want string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, transport := range []string{"udp", "tcp"} {
			got, err := s.answer(transport, name, qtype)
			if assert.NoError(c, err) {
				assert.Equal(c, want, got, "%s %s over %s", name, dns.TypeToString[qtype], transport)
			}
		}
	}, within, 50*time.Millisecond, "%s: not answered within %s", what, within)
}

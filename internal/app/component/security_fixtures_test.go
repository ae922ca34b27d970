package component_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// secSet is a clusterset of real components for the security tests: one
// embedded etcd and, per cluster, a federator (RunFederator) and
// optionally a gateway (RunGateway) with a demo backend, each on its own
// loopback address 127.<octet>.<i>.1 with the default ports.
type secSet struct {
	t        *testing.T
	octet    int
	etcd     *secureetcd.Secure // TLS and auth on: each federator writes as its cluster's etcd user
	cli      *clientv3.Client   // the attacker: anyone who can write etcd (the clusterset admin's client)
	clusters map[string]*secCluster
}

type secCluster struct {
	name, ip, dir, caDir string
	leafLifetime         string
	gateway              bool
	backendUp            bool
	fedCancel, gwCancel  context.CancelFunc
	fedDone, gwDone      chan error
	fedLog, gwLog        *syncBuf
}

func (c *secCluster) addr(port int) string { return net.JoinHostPort(c.ip, strconv.Itoa(port)) }

func (c *secCluster) td() string { return certs.TrustDomainFor(c.name, component.DefaultDomain) }

// secGatewayToken is the join token of every cluster's gateway.
const secGatewayToken = "gw-token-0123456789abcdef0123456789"

// syncBuf is a log buffer safe for the handler's and the test's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newSecSet creates the CAs of clusters (name -> with a gateway) and starts
// etcd; start each cluster with startFederator / startGateway.
func newSecSet(t *testing.T, octet int, clusters []string, gateways map[string]bool) *secSet {
	t.Helper()
	secure := secureetcd.Start(t)
	s := &secSet{t: t, octet: octet, etcd: secure, cli: secure.Admin, clusters: map[string]*secCluster{}}
	for i, name := range clusters {
		c := &secCluster{name: name, ip: fmt.Sprintf("127.%d.%d.1", octet, i+1), dir: filepath.Join(t.TempDir(), name),
			gateway: gateways[name], leafLifetime: "1h", fedLog: &syncBuf{}, gwLog: &syncBuf{}}
		c.caDir = filepath.Join(c.dir, "ca")
		_, err := certs.InitCADir(c.caDir, c.td(), 24*time.Hour, time.Now(), false)
		require.NoError(t, err)
		s.clusters[name] = c
	}
	t.Cleanup(func() {
		for _, c := range s.clusters {
			s.stop(c)
		}
		if t.Failed() {
			for _, c := range s.clusters {
				t.Logf("%s federator log:\n%s\n%s gateway log:\n%s", c.name, c.fedLog, c.name, c.gwLog)
			}
		}
	})
	return s
}

// caCert is the first CA certificate of c's CA directory.
func (c *secCluster) caCert(t *testing.T) *x509.Certificate {
	t.Helper()
	cas, err := certs.ReadCertificatesFile(filepath.Join(c.caDir, certs.CACertFile))
	require.NoError(t, err)
	return cas[0]
}

// startFederator runs c's federator, pinning every other cluster's CA.
func (s *secSet) startFederator(c *secCluster) {
	t := s.t
	require.NoError(t, os.MkdirAll(c.dir, 0o700))
	write := func(name, body string) string {
		p := filepath.Join(c.dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	exports := "version: 1\nservices: []\n"
	if c.gateway {
		exports = fmt.Sprintf("version: 1\nservices:\n- namespace: demo\n  name: echo\n  ports:\n  - name: http\n    port: 8080\n"+
			"  endpoints:\n  - address: %s\n    targetPorts:\n      http: 18080\n", c.ip)
	}
	pins := map[string]string{}
	for _, p := range s.clusters {
		if p != c {
			pins[p.name] = certs.Fingerprint(p.caCert(t))
		}
	}
	var pinsYAML strings.Builder
	for name, fp := range pins {
		fmt.Fprintf(&pinsYAML, "  %s: %q\n", name, fp)
	}
	creds := s.etcd.ClusterCreds(t, c.name)
	path := write("federator.yaml", fmt.Sprintf(`cluster: %s
leaderTTL: 2s
etcd:
  endpoints: [%q]
  caFile: %s
  serverName: %s
  username: %s
  passwordFile: %s
listen:
  grpc: %q
  bootstrap: %q
  http: %q
caDir: %s
caReloadInterval: 200ms
vipRanges: ["127.%d.%d.128/25"]
exports:
  static: %s
signing:
  lifetime: %s
  joinTokensFile: %s
trustPins:
%s`, c.name, creds.Endpoint, creds.CAFile, creds.ServerName, creds.Username, creds.PasswordFile, c.addr(7443), c.addr(7444), c.addr(9090), c.caDir, s.octet, 100+len(s.clusters)+len(c.name),
		write("exports.yaml", exports), c.leafLifetime, write("tokens.yaml", secGatewayToken+": gateway\n"), pinsYAML.String()))
	cfg, err := component.LoadFederatorConfig(path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c.fedCancel, c.fedDone = cancel, make(chan error, 1)
	log := slog.New(slog.NewTextHandler(c.fedLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { c.fedDone <- component.RunFederator(ctx, cfg, log) }()
	waitHTTP(t, "http://"+c.addr(9090)+"/readyz", c.fedLog)
}

// startGateway runs c's gateway (and its demo backend on c.ip:18080).
func (s *secSet) startGateway(c *secCluster) {
	t := s.t
	tok := filepath.Join(c.dir, "gateway.token")
	require.NoError(t, os.WriteFile(tok, []byte(secGatewayToken+"\n"), 0o600))
	if !c.backendUp {
		ln, err := net.Listen("tcp", c.addr(18080))
		require.NoError(t, err)
		backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "echo from %s\n", c.name) }),
			ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = backend.Serve(ln) }()
		t.Cleanup(func() { _ = backend.Close() })
		c.backendUp = true
	}
	path := filepath.Join(c.dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`cluster: %s
federator: %q
bootstrap: %q
caFile: %s
tokenFile: %s
instance: gw-0
listen: %q
http: %q
`, c.name, c.addr(7443), c.addr(7444), filepath.Join(c.caDir, certs.BundleFile), tok, c.addr(4433), c.addr(9091))), 0o600))
	cfg, err := component.LoadGatewayConfig(path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c.gwCancel, c.gwDone = cancel, make(chan error, 1)
	log := slog.New(slog.NewTextHandler(c.gwLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { c.gwDone <- component.RunGateway(ctx, cfg, log) }()
	waitHTTP(t, "http://"+c.addr(9091)+"/readyz", c.gwLog)
}

// stopFederator stops c's federator only.
func (s *secSet) stopFederator(c *secCluster) {
	c.fedCancel()
	select {
	case err := <-c.fedDone:
		require.NoError(s.t, err)
	case <-time.After(15 * time.Second):
		s.t.Fatalf("%s: the federator did not stop", c.name)
	}
	c.fedCancel = nil
}

func (s *secSet) stop(c *secCluster) {
	for _, p := range []struct {
		cancel context.CancelFunc
		done   chan error
	}{{c.gwCancel, c.gwDone}, {c.fedCancel, c.fedDone}} {
		if p.cancel != nil {
			p.cancel()
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				s.t.Errorf("%s: a component did not stop", c.name)
			}
		}
	}
	c.gwCancel, c.fedCancel = nil, nil
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string, log fmt.Stringer) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "%s never answered 200; log:\n%s", url, log)
}

// metric returns the sum of the samples of name whose labels contain
// every one of labels ("k=\"v\"") at c's endpoint.
func metric(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			sum += v
		}
	}
	return sum
}

// leafFrom mints a gateway leaf of td from ca.
func leafFrom(t *testing.T, ca *certs.CA) *tls.Certificate {
	t.Helper()
	leaf, err := ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	return leaf
}

// tunnelTo opens one stream to gw's gateway as leaf (a gateway identity of
// source) asking for demo/echo, and returns the response code or the
// error that refused it.
func tunnelTo(t *testing.T, gw *secCluster, gwCA []*x509.Certificate, source string, leaf *tls.Certificate) (causewayv1.StreamCode, error) {
	t.Helper()
	bundles := certs.NewBundleSet()
	bundles.Set(gw.td(), gwCA)
	gwID, err := certs.NewID(gw.td(), "gateway")
	require.NoError(t, err)
	tlsConf := certs.ClientConfig(certs.TLSOptions{Source: certs.NewStaticSource(leaf), Bundles: bundles,
		Authorize: certs.AuthorizeID(gwID), NextProtos: []string{"causeway/1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, gw.addr(4433), tlsConf, &quic.Config{})
	if err != nil {
		return 0, err
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tunnel.WriteFrame(st, &causewayv1.StreamHeader{Version: 1, Namespace: "demo", Service: "echo", Port: 8080,
		Protocol: causewayv1.Protocol_PROTOCOL_TCP, SourceCluster: source}); err != nil {
		return 0, err
	}
	resp, err := tunnel.ReadResponse(st, 4096)
	if err != nil {
		return 0, err
	}
	return resp.GetCode(), nil
}

// adminClient is an Admin client of c's federator with c's admin identity.
func adminClient(t *testing.T, c *secCluster) causewayv1.AdminClient {
	t.Helper()
	cas, err := certs.LoadCASet(c.caDir)
	require.NoError(t, err)
	ca, err := cas.SigningCA()
	require.NoError(t, err)
	leaf, err := ca.NewLeafKeyPair("admin", time.Hour, time.Now())
	require.NoError(t, err)
	bundles := certs.NewBundleSet()
	bundles.Set(c.td(), cas.Authorities())
	fedID, err := certs.NewID(c.td(), "federator")
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.addr(7443), grpc.WithTransportCredentials(credentials.NewTLS(certs.ClientConfig(certs.TLSOptions{
		Source: certs.NewStaticSource(leaf), Bundles: bundles, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"}}))))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return causewayv1.NewAdminClient(conn)
}

// trustOf is how c's federator trusts peer's bundle (ClusterInfo.trust).
func trustOf(t *testing.T, adm causewayv1.AdminClient, peer string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := adm.ListClusters(ctx, &causewayv1.ListClustersRequest{})
	require.NoError(t, err)
	for _, ci := range resp.GetClusters() {
		if ci.GetName() == peer {
			return ci.GetTrust()
		}
	}
	return ""
}

// putBundle writes rec at cluster's bundle key, as an etcd writer would.
func (s *secSet) putBundle(cluster string, rec *causewayv1.TrustBundle) {
	b, err := store.Encode(rec)
	require.NoError(s.t, err)
	_, err = s.cli.Put(context.Background(), store.BundleKey(cluster), string(b))
	require.NoError(s.t, err)
}

// getBundle reads cluster's published bundle.
func (s *secSet) getBundle(cluster string) *causewayv1.TrustBundle {
	resp, err := s.cli.Get(context.Background(), store.BundleKey(cluster))
	require.NoError(s.t, err)
	require.Len(s.t, resp.Kvs, 1)
	e, err := store.DecodeEntry(store.BundleKey(cluster), resp.Kvs[0].Value)
	require.NoError(s.t, err)
	return e.GetBundle()
}

// catalogMarker rewrites cluster's record unchanged, a new catalog entry,
// and waits until gw's gateway applied a catalog update after it: every
// etcd write before the marker has then reached the gateway, or was held
// back by its federator.
func (s *secSet) catalogMarker(cluster string, gw *secCluster) {
	t := s.t
	url := "http://" + gw.addr(9091) + "/metrics"
	before := metric(t, url, "causeway_catalog_updates_total", `component="gateway"`)
	resp, err := s.cli.Get(context.Background(), store.ClusterKey(cluster))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	_, err = s.cli.Put(context.Background(), store.ClusterKey(cluster), string(resp.Kvs[0].Value))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return metric(t, url, "causeway_catalog_updates_total", `component="gateway"`) > before
	}, 10*time.Second, 20*time.Millisecond, "the gateway of %s never applied the marker", gw.name)
}

var secMu sync.Mutex // the security tests bind fixed ports: one at a time

package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func writeState(t *testing.T, clusters ...stateCluster) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"clusters": clusters})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestResolve(t *testing.T) {
	state := writeState(t,
		stateCluster{Name: "east", Federator: "127.0.1.1:7443", AdminCert: "e.crt", AdminKey: "e.key", CAFile: "e-ca.crt"},
		stateCluster{Name: "west", Federator: "127.0.2.1:7443", AdminCert: "w.crt", AdminKey: "w.key", CAFile: "w-ca.crt"})
	// A state file of the previous release: the federator API under "adminAPI".
	oldState := writeState(t,
		stateCluster{Name: "east", AdminAPI: "127.0.1.1:7443", AdminCert: "e.crt", AdminKey: "e.key", CAFile: "e-ca.crt"})
	envAll := map[string]string{EnvFederator: "127.0.9.1:7443", EnvCert: "x.crt", EnvKey: "x.key", EnvCA: "x-ca.crt"}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		opts    Options
		env     map[string]string
		want    Target
		wantErr string
	}{
		{name: "flags", opts: Options{Federator: "a:1", Cert: "c", Key: "k", CA: "ca"},
			want: Target{Addr: "a:1", Cert: "c", Key: "k", CA: "ca", Timeout: DefaultTimeout}},
		{name: "env", env: map[string]string{EnvFederator: "b:2", EnvCert: "c", EnvKey: "k", EnvCA: "ca"}, opts: Options{Timeout: time.Second},
			want: Target{Addr: "b:2", Cert: "c", Key: "k", CA: "ca", Timeout: time.Second}},
		{name: "flag beats env", opts: Options{Federator: "a:1"}, env: map[string]string{EnvFederator: "b:2", EnvCert: "c", EnvKey: "k", EnvCA: "ca"},
			want: Target{Addr: "a:1", Cert: "c", Key: "k", CA: "ca", Timeout: DefaultTimeout}},
		{name: "state file, first cluster", opts: Options{StateFile: state},
			want: Target{Addr: "127.0.1.1:7443", Cert: "e.crt", Key: "e.key", CA: "e-ca.crt", Timeout: DefaultTimeout}},
		{name: "state file from env, named cluster", opts: Options{Cluster: "west"}, env: map[string]string{EnvStateFile: state},
			want: Target{Addr: "127.0.2.1:7443", Cert: "w.crt", Key: "w.key", CA: "w-ca.crt", Timeout: DefaultTimeout}},
		{name: "flags beat the state file", opts: Options{StateFile: state, Federator: "127.0.0.1:1"},
			want: Target{Addr: "127.0.0.1:1", Cert: "e.crt", Key: "e.key", CA: "e-ca.crt", Timeout: DefaultTimeout}},
		{name: "unknown cluster", opts: Options{StateFile: state, Cluster: "north"}, wantErr: `cluster "north" is not in state file`},
		{name: "missing state file", opts: Options{StateFile: "/nonexistent/state.json"}, wantErr: "/nonexistent/state.json"},
		{name: "nothing", wantErr: "no federator API address: give --federator (or CAUSEWAY_FEDERATOR)"},
		{name: "deprecated env", env: map[string]string{EnvAdmin: "b:2", EnvCert: "c", EnvKey: "k", EnvCA: "ca"},
			want: Target{Addr: "b:2", Cert: "c", Key: "k", CA: "ca", Timeout: DefaultTimeout,
				Deprecated: []string{"CAUSEWAY_ADMIN is deprecated, use CAUSEWAY_FEDERATOR"}}},
		{name: "new env beats deprecated env", env: map[string]string{EnvFederator: "a:1", EnvAdmin: "b:2", EnvCert: "c", EnvKey: "k", EnvCA: "ca"},
			want: Target{Addr: "a:1", Cert: "c", Key: "k", CA: "ca", Timeout: DefaultTimeout}},
		{name: "old state file key adminAPI", opts: Options{StateFile: oldState},
			want: Target{Addr: "127.0.1.1:7443", Cert: "e.crt", Key: "e.key", CA: "e-ca.crt", Timeout: DefaultTimeout}},
		{name: "--cluster without a state file", opts: Options{Cluster: "north"}, env: envAll,
			wantErr: "--cluster needs a state file (--state-file or CAUSEWAY_STATE_FILE); with --federator/--cert/--key/--ca the cluster is the one you connect to"},
		{name: "--cluster without a state file names the target (imports)", opts: Options{Cluster: "north", ClusterIsTarget: true}, env: envAll,
			want: Target{Addr: "127.0.9.1:7443", Cert: "x.crt", Key: "x.key", CA: "x-ca.crt", Timeout: DefaultTimeout}},
		{name: "--cluster picks the state file entry over the environment", opts: Options{Cluster: "west", StateFile: state}, env: envAll,
			want: Target{Addr: "127.0.2.1:7443", Cert: "w.crt", Key: "w.key", CA: "w-ca.crt", Timeout: DefaultTimeout}},
		{name: "without --cluster the environment beats the state file", opts: Options{StateFile: state}, env: envAll,
			want: Target{Addr: "127.0.9.1:7443", Cert: "x.crt", Key: "x.key", CA: "x-ca.crt", Timeout: DefaultTimeout}},
		{name: "no port: default 7443", opts: Options{Federator: "127.0.0.5", Cert: "c", Key: "k", CA: "ca"},
			want: Target{Addr: "127.0.0.5:7443", Cert: "c", Key: "k", CA: "ca", Timeout: DefaultTimeout}},
		{name: "bare IPv6: default 7443", opts: Options{Federator: "::1", Cert: "c", Key: "k", CA: "ca"},
			want: Target{Addr: "[::1]:7443", Cert: "c", Key: "k", CA: "ca", Timeout: DefaultTimeout}},
		{name: "URL", opts: Options{Federator: "https://h:7443", Cert: "c", Key: "k", CA: "ca"}, wantErr: "no URL scheme; want host:port"},
		{name: "bad port", opts: Options{Federator: "h:99999", Cert: "c", Key: "k", CA: "ca"}, wantErr: `port "99999" is not a number in 1-65535`},
		{name: "empty host", opts: Options{Federator: ":7443", Cert: "c", Key: "k", CA: "ca"}, wantErr: "no host"},
		{name: "no key", opts: Options{Federator: "a:1", Cert: "c", CA: "ca"}, wantErr: "--key (or CAUSEWAY_KEY)"},
		{name: "negative timeout", opts: Options{Timeout: -time.Second}, wantErr: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.Resolve(env(tc.env))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseService(t *testing.T) {
	ns, name, err := ParseService("demo/echo")
	require.NoError(t, err)
	require.Equal(t, []string{"demo", "echo"}, []string{ns, name})
	ns, name, err = ParseService("")
	require.NoError(t, err)
	require.Empty(t, ns+name)
	for _, bad := range []string{"demo", "demo/", "/echo", "Demo/echo", "demo/echo/x"} {
		_, _, err := ParseService(bad)
		require.Error(t, err, bad)
	}
}

func TestExplain(t *testing.T) {
	c := &Client{addr: "127.0.0.1:7443", timeout: 5 * time.Second}
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7443: connect: connection refused"`),
			"federator API 127.0.0.1:7443 unreachable: dial tcp 127.0.0.1:7443: connect: connection refused"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "federator API 127.0.0.1:7443 unreachable: no answer within 5s"},
		{context.DeadlineExceeded, "federator API 127.0.0.1:7443 unreachable: no answer within 5s"},
		{status.Error(codes.Unavailable, "etcd: put x: context deadline exceeded"), "federator API 127.0.0.1:7443: etcd: put x: context deadline exceeded"},
		{status.Error(codes.PermissionDenied, "admin API: spiffe://e/gateway is not spiffe://e/admin"),
			"federator API 127.0.0.1:7443 refused the call: admin API: spiffe://e/gateway is not spiffe://e/admin"},
		{status.Error(codes.NotFound, "cluster ghost is not a member\nof the federation"), "cluster ghost is not a member of the federation"},
		{status.Error(codes.Internal, "boom"), "federator API 127.0.0.1:7443: Internal: boom"},
	}
	for _, tc := range tests {
		got := c.explain(tc.err).Error()
		require.Equal(t, tc.want, got)
		require.NotContains(t, got, "\n")
	}
}

func TestTables(t *testing.T) {
	created := timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC))
	clusters := newClusterList(&causewayv1.ListClustersResponse{Clusters: []*causewayv1.ClusterInfo{
		{Name: "east", Region: "us-east", Zone: "us-east-1a", TrustDomain: "east.clusterset.local", Exports: 2, Local: true, Trust: "own",
			DrainedServices: []string{"demo/echo"},
			Gateways: []*causewayv1.GatewayInfo{{Instance: "gw-0", Addresses: []string{"127.0.1.1:4443"},
				LeaseState: causewayv1.LeaseState_LEASE_STATE_LIVE, LeaseTtlSeconds: 4}}},
		{Name: "west", Drained: true, Trust: "untrusted", TrustDetail: "not pinned"},
	}})
	var b bytes.Buffer
	require.NoError(t, Print(&b, FormatTable, clusters))
	require.Equal(t, `NAME    REGION   ZONE        TRUST DOMAIN           GATEWAYS        EXPORTS  DRAINED    TRUST
east *  us-east  us-east-1a  east.clusterset.local  127.0.1.1:4443  2        demo/echo  own
west    -        -           -                      -               0        yes        untrusted
west: untrusted not pinned
`, b.String())

	exports := newExportList(&causewayv1.ListExportsResponse{Services: []*causewayv1.ServiceExports{{Namespace: "demo", Name: "echo",
		Clusters: []*causewayv1.ClusterExport{{Cluster: "east", Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports:        []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
			ReadyPerZone: map[string]uint32{"b": 1, "a": 2}, ReadyEndpoints: 3, Created: created, Drained: true}}}}})
	b.Reset()
	require.NoError(t, Print(&b, FormatTable, exports))
	require.Equal(t, `SERVICE    CLUSTER  TYPE          PORTS          READY        ROUTING  CREATED               DRAINED
demo/echo  east     ClusterSetIP  http:8080/TCP  3 (a=2,b=1)  gateway  2025-01-02T03:04:05Z  yes
`, b.String())

	// JSON: stable camelCase names, lists never null.
	b.Reset()
	require.NoError(t, Print(&b, FormatJSON, clusters))
	var raw map[string][]map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
	require.Equal(t, []any{}, raw["clusters"][1]["gateways"])
	require.Equal(t, []any{}, raw["clusters"][1]["vipRanges"])
	require.Equal(t, "east.clusterset.local", raw["clusters"][0]["trustDomain"])
	// The lease's remaining time, named for what it is.
	require.Equal(t, float64(4), raw["clusters"][0]["gateways"].([]any)[0].(map[string]any)["leaseRemainingSeconds"])
	b.Reset()
	require.NoError(t, Print(&b, FormatYAML, exports))
	require.Contains(t, b.String(), "readyEndpoints: 3")
	require.Contains(t, b.String(), "created: \"2025-01-02T03:04:05.000000006Z\"")

	b.Reset()
	require.NoError(t, (&DrainResult{Cluster: "east", Service: "demo/echo", Drained: true, Changed: true}).WriteTable(&b))
	require.Equal(t, "drained demo/echo in cluster east\n", b.String())
	b.Reset()
	require.NoError(t, (&DrainResult{Cluster: "east"}).WriteTable(&b))
	require.Equal(t, "cluster east was not drained\n", b.String())
	b.Reset()
	require.NoError(t, (&DrainResult{Cluster: "west", DrainedServices: []string{"demo/echo"}}).WriteTable(&b))
	require.Equal(t, "cluster west was not drained; drained services of it: demo/echo (undrain each with --service NAMESPACE/NAME)\n", b.String())
}

func TestEmptyListings(t *testing.T) {
	tests := []struct {
		name   string
		v      Tabular
		format Format
		out    string
		errOut string
	}{
		{"exports table", newExportList(&causewayv1.ListExportsResponse{}), FormatTable, "", "No exports found.\n"},
		{"clusters table", newClusterList(&causewayv1.ListClustersResponse{}), FormatTable, "", "No clusters found.\n"},
		{"imports table", newImportList(&causewayv1.ListImportsResponse{Cluster: "west"}), FormatTable, "", "No imports found in cluster west.\n"},
		{"exports json", newExportList(&causewayv1.ListExportsResponse{}), FormatJSON, "{\n  \"services\": []\n}\n", ""},
		{"status is no listing", &Status{Cluster: "east"}, FormatTable, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.NoError(t, PrintListing(&out, &errOut, tc.format, tc.v))
			require.Equal(t, tc.errOut, errOut.String())
			if tc.out != "" || tc.errOut != "" {
				require.Equal(t, tc.out, out.String())
			} else {
				require.NotEmpty(t, out.String())
			}
		})
	}
}

// stubAdmin answers Status only.
type stubAdmin struct {
	causewayv1.UnimplementedAdminServer
}

func (stubAdmin) Status(context.Context, *causewayv1.StatusRequest) (*causewayv1.StatusResponse, error) {
	return &causewayv1.StatusResponse{Cluster: "east", Synced: true}, nil
}

// pki writes a CA and an admin key pair of trust domain td to dir.
func pki(t *testing.T, td string) (*certs.CA, Target) {
	t.Helper()
	ca, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	pair, err := ca.NewLeafKeyPair("admin", time.Hour, time.Now())
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	require.NoError(t, err)
	dir := t.TempDir()
	tg := Target{Cert: filepath.Join(dir, "admin.crt"), Key: filepath.Join(dir, "admin.key"), CA: filepath.Join(dir, "ca.crt"), Timeout: 2 * time.Second}
	require.NoError(t, os.WriteFile(tg.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), 0o600))
	require.NoError(t, os.WriteFile(tg.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(t, os.WriteFile(tg.CA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600))
	return ca, tg
}

func TestClientCallsOverMutualTLS(t *testing.T) {
	ca, tg := pki(t, "east.clusterset.local")
	fed, err := ca.NewLeafKeyPair("federator", time.Hour, time.Now())
	require.NoError(t, err)
	bundles := certs.NewBundleSet()
	bundles.Set(ca.TrustDomain, []*x509.Certificate{ca.Cert})
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
		Source: certs.NewStaticSource(fed), Bundles: bundles, NextProtos: []string{"h2"}}))))
	causewayv1.RegisterAdminServer(srv, stubAdmin{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { srv.Stop(); <-done }()

	tg.Addr = ln.Addr().String()
	c, err := Dial(tg)
	require.NoError(t, err)
	defer c.Close()
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, "east", st.Cluster)
	require.Equal(t, tg.Addr, st.Federator)
	_, err = c.Clusters(context.Background())
	require.ErrorContains(t, err, "Unimplemented")

	// A CA of another trust domain than the certificate: refused before dialing.
	_, other := pki(t, "west.clusterset.local")
	mixed := tg
	mixed.CA = other.CA
	_, err = Dial(mixed)
	require.ErrorContains(t, err, "trust domain east.clusterset.local")
	// The right files but another cluster's federator: the handshake fails.
	_, west := pki(t, "west.clusterset.local")
	west.Addr = tg.Addr
	c2, err := Dial(west)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Status(context.Background())
	require.ErrorContains(t, err, "federator API "+tg.Addr+": TLS handshake failed")
}

// TestClientNotTLS: the HTTP endpoint given as the federator API address
// gets a hint at the federator API's port.
func TestClientNotTLS(t *testing.T) {
	_, tg := pki(t, "east.clusterset.local")
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	tg.Addr = srv.Listener.Addr().String()
	c, err := Dial(tg)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Status(context.Background())
	require.ErrorContains(t, err, "is "+tg.Addr+" the HTTP endpoint? the federator API listens on :7443 by default")
}

func TestClientUnreachable(t *testing.T) {
	_, tg := pki(t, "east.clusterset.local")
	// Refused: fails at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tg.Addr = ln.Addr().String()
	ln.Close()
	c, err := Dial(tg)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.Status(context.Background())
	require.ErrorContains(t, err, "federator API "+tg.Addr+" unreachable: ")
	require.Less(t, time.Since(start), tg.Timeout)

	// Accepts TCP but never answers: fails at the deadline.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	tg.Addr, tg.Timeout = silent.Addr().String(), 300*time.Millisecond
	c2, err := Dial(tg)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Status(context.Background())
	require.EqualError(t, err, "federator API "+tg.Addr+" unreachable: no answer within 300ms")
	require.False(t, strings.Contains(err.Error(), "\n"))
}

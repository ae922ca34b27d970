package certsctl_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/causeway-mesh/causeway/internal/app/cli/certsctl"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "east-ca")
	r, err := certsctl.Init(certsctl.InitOptions{Cluster: "east", Out: dir})
	require.NoError(t, err)
	require.Equal(t, "east.clusterset.local", r.TrustDomain)
	require.Equal(t, "spiffe://east.clusterset.local", r.CA.SPIFFEID)
	require.True(t, r.CA.IsCA)
	require.WithinDuration(t, time.Now().Add(certs.DefaultCALifetime), r.CA.NotAfter, time.Minute)
	fi, err := os.Stat(r.CAKey)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	var table bytes.Buffer
	require.NoError(t, cli.Print(&table, cli.FormatTable, r))
	require.Contains(t, table.String(), "trust domain east.clusterset.local")
	require.Contains(t, table.String(), "0600")

	_, err = certsctl.Init(certsctl.InitOptions{Cluster: "east", Out: dir})
	require.ErrorIs(t, err, fs.ErrExist)
	r2, err := certsctl.Init(certsctl.InitOptions{Cluster: "east", Out: dir, Force: true, Domain: "mesh.example"})
	require.NoError(t, err)
	require.Equal(t, "east.mesh.example", r2.TrustDomain)
	require.NotEqual(t, r.CA.Serial, r2.CA.Serial)

	_, err = certsctl.Init(certsctl.InitOptions{Cluster: "East_1", Out: t.TempDir()})
	require.ErrorContains(t, err, "DNS label")
}

// pki is two cluster CA directories and leaves written as PEM files.
type pki struct {
	east, west             *certs.CA
	eastBundle, westBundle string
	dir                    string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	p.east, err = certs.InitCADir(filepath.Join(p.dir, "east"), "east.clusterset.local", time.Hour, time.Now(), false)
	require.NoError(t, err)
	p.west, err = certs.InitCADir(filepath.Join(p.dir, "west"), "west.clusterset.local", time.Hour, time.Now(), false)
	require.NoError(t, err)
	p.eastBundle = filepath.Join(p.dir, "east", certs.BundleFile)
	p.westBundle = filepath.Join(p.dir, "west", certs.BundleFile)
	return p
}

// writeLeaf writes c's chain (and key, if keyPath is set) as PEM.
func writeLeaf(t *testing.T, c *tls.Certificate, certPath, keyPath string) {
	t.Helper()
	var b []byte
	for _, d := range c.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	require.NoError(t, os.WriteFile(certPath, b, 0o644))
	if keyPath != "" {
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	}
}

func TestInspectFile(t *testing.T) {
	p := newPKI(t)
	leaf, err := p.east.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	leafPath := filepath.Join(p.dir, "gw.crt")
	writeLeaf(t, leaf, leafPath, "")
	forged, err := (&certs.CA{Cert: p.east.Cert, Key: p.east.Key, TrustDomain: "west.clusterset.local"}).NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	forgedPath := filepath.Join(p.dir, "forged.crt")
	writeLeaf(t, forged, forgedPath, "")

	in, err := certsctl.Inspect(t.Context(), leafPath, certsctl.InspectOptions{Bundles: []string{p.eastBundle, p.westBundle}})
	require.NoError(t, err)
	require.Equal(t, "file", in.Protocol)
	require.Len(t, in.Chain, 1)
	require.Equal(t, "spiffe://east.clusterset.local/gateway", in.Chain[0].SPIFFEID)
	require.Equal(t, certs.SerialHex(leaf.Leaf), in.Chain[0].Serial)
	require.Equal(t, "ECDSA P-256", in.Chain[0].Key)
	require.False(t, in.Chain[0].Expired)
	require.True(t, in.Bundles[0].Verifies)
	require.False(t, in.Bundles[1].Verifies)
	require.False(t, in.Bundles[1].ChainsTo)

	// A leaf claiming west, signed by east: it chains to east's CA, yet
	// neither bundle verifies it.
	in, err = certsctl.Inspect(t.Context(), forgedPath, certsctl.InspectOptions{Bundles: []string{p.eastBundle, p.westBundle}})
	require.NoError(t, err)
	require.True(t, in.Bundles[0].ChainsTo)
	require.False(t, in.Bundles[0].Verifies)
	require.Contains(t, in.Bundles[0].Reason, "unknown trust domain")
	require.False(t, in.Bundles[1].Verifies)
	require.Contains(t, in.Bundles[1].Reason, "unknown authority")
	var table bytes.Buffer
	require.NoError(t, cli.Print(&table, cli.FormatTable, in))
	require.Contains(t, table.String(), "does NOT verify it")
	require.Contains(t, table.String(), "though the chain leads to one of its CAs")
	// Not verifying is an error, so that the command exits non-zero.
	require.ErrorIs(t, in.Verified(), certsctl.ErrNotVerified)
	require.ErrorContains(t, in.Verified(), p.eastBundle)

	// The CA itself.
	in, err = certsctl.Inspect(t.Context(), filepath.Join(p.dir, "east", certs.CACertFile), certsctl.InspectOptions{Bundles: []string{p.eastBundle}})
	require.NoError(t, err)
	require.True(t, in.Chain[0].IsCA)
	require.True(t, in.Bundles[0].Verifies)
	require.NoError(t, in.Verified())

	_, err = certsctl.Inspect(t.Context(), filepath.Join(p.dir, "missing"), certsctl.InspectOptions{})
	require.ErrorContains(t, err, "neither a file nor a host:port")
	_, err = certsctl.Inspect(t.Context(), leafPath, certsctl.InspectOptions{Bundles: []string{leafPath}})
	require.ErrorContains(t, err, "--bundle")
}

func TestInspectAddr(t *testing.T) {
	p := newPKI(t)
	bundles := certs.NewBundleSet()
	bundles.Set(p.east.TrustDomain, []*x509.Certificate{p.east.Cert})
	fed, err := p.east.NewLeafKeyPair("federator", time.Hour, time.Now())
	require.NoError(t, err)
	gw, err := p.east.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	serverOpts := func(c *tls.Certificate, proto string) certs.TLSOptions {
		return certs.TLSOptions{Source: certs.NewStaticSource(c), Bundles: bundles, NextProtos: []string{proto}}
	}

	// A federator-like TLS endpoint that requires a client certificate:
	// the chain is read even without one.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", certs.ServerConfig(serverOpts(fed, "h2")))
	require.NoError(t, err)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	var qln *quic.Listener
	defer func() {
		cancel()
		ln.Close()
		if qln != nil {
			qln.Close()
		}
		wg.Wait()
	}()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	})
	in, err := certsctl.Inspect(t.Context(), ln.Addr().String(), certsctl.InspectOptions{Bundles: []string{p.eastBundle, p.westBundle}})
	require.NoError(t, err)
	require.Equal(t, "tls", in.Protocol)
	require.Equal(t, "h2", in.NegotiatedALPN)
	require.Equal(t, "spiffe://east.clusterset.local/federator", in.Chain[0].SPIFFEID)
	require.True(t, in.Bundles[0].Verifies)
	require.False(t, in.Bundles[1].Verifies)

	// A gateway-like QUIC endpoint, with a client certificate.
	qln, err = quic.ListenAddr("127.0.0.1:0", certs.ServerConfig(serverOpts(gw, tunnel.ALPN)), tunnel.Config{}.QUIC())
	require.NoError(t, err)
	wg.Go(func() {
		for {
			c, err := qln.Accept(ctx)
			if err != nil {
				return
			}
			_ = c.CloseWithError(0, "")
		}
	})
	client, err := p.east.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	certPath, keyPath := filepath.Join(p.dir, "c.crt"), filepath.Join(p.dir, "c.key")
	writeLeaf(t, client, certPath, keyPath)
	in, err = certsctl.Inspect(t.Context(), qln.Addr().String(), certsctl.InspectOptions{QUIC: true, Cert: certPath, Key: keyPath,
		Bundles: []string{p.eastBundle}})
	require.NoError(t, err)
	require.Equal(t, "quic", in.Protocol)
	require.Equal(t, tunnel.ALPN, in.NegotiatedALPN)
	require.Equal(t, "spiffe://east.clusterset.local/gateway", in.Chain[0].SPIFFEID)
	require.True(t, in.Bundles[0].Verifies)

	// Nothing listening.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	pc.Close()
	_, err = certsctl.Inspect(t.Context(), addr, certsctl.InspectOptions{QUIC: true, Timeout: 200 * time.Millisecond})
	require.ErrorContains(t, err, "inspect "+addr+": unreachable: no answer within 200ms")
}

// catalogServer answers Catalog.Watch with one snapshot.
type catalogServer struct {
	causewayv1.UnimplementedCatalogServer
	snapshot *causewayv1.WatchResponse
}

func (s *catalogServer) Watch(_ *causewayv1.WatchRequest, stream grpc.ServerStreamingServer[causewayv1.WatchResponse]) error {
	if err := stream.Send(s.snapshot); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// adminServer answers ListClusters with clusters.
type adminServer struct {
	causewayv1.UnimplementedAdminServer
	clusters []*causewayv1.ClusterInfo
}

func (s *adminServer) ListClusters(context.Context, *causewayv1.ListClustersRequest) (*causewayv1.ListClustersResponse, error) {
	return &causewayv1.ListClustersResponse{Clusters: s.clusters}, nil
}

func TestFetchBundles(t *testing.T) {
	p := newPKI(t)
	eastDir := filepath.Join(p.dir, "east")
	_, err := certs.RotateCAStep(eastDir, certs.RotationOptions{TrustDomain: p.east.TrustDomain}) // east shows 2 CAs
	require.NoError(t, err)
	_, eastCAs, err := certs.LoadCADir(eastDir)
	require.NoError(t, err)
	bundles := certs.NewBundleSet()
	bundles.Set(p.east.TrustDomain, eastCAs)

	snapshot := &causewayv1.WatchResponse{Reset_: true, Revision: 42, Upserts: []*causewayv1.Entry{
		{Key: "bundles/west", Record: &causewayv1.Entry_Bundle{Bundle: &causewayv1.TrustBundle{Cluster: "west",
			TrustDomain: p.west.TrustDomain, X509Authorities: [][]byte{p.west.Cert.Raw}, Sequence: 7}}},
		{Key: "bundles/east", Record: &causewayv1.Entry_Bundle{Bundle: &causewayv1.TrustBundle{Cluster: "east",
			TrustDomain: p.east.TrustDomain, X509Authorities: certs.AuthoritiesDER(eastCAs), Sequence: 9}}},
		// A rogue cluster publishing west's CA under its own key.
		{Key: "bundles/rogue", Record: &causewayv1.Entry_Bundle{Bundle: &causewayv1.TrustBundle{Cluster: "rogue",
			TrustDomain: p.west.TrustDomain, X509Authorities: [][]byte{p.west.Cert.Raw}}}},
		{Key: "clusters/east", Record: &causewayv1.Entry_Cluster{Cluster: &causewayv1.ClusterRecord{Name: "east"}}},
	}}
	serve := func(component string) string {
		c, err := p.east.NewLeafKeyPair(component, time.Hour, time.Now())
		require.NoError(t, err)
		gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
			Source: certs.NewStaticSource(c), Bundles: bundles, NextProtos: []string{"h2"},
			Authorize: certs.AuthorizeID(certs.ID{TrustDomain: p.east.TrustDomain, Path: "/admin"})}))))
		causewayv1.RegisterCatalogServer(gs, &catalogServer{snapshot: snapshot})
		causewayv1.RegisterAdminServer(gs, &adminServer{clusters: []*causewayv1.ClusterInfo{
			{Name: "east", Trust: "own"}, {Name: "west", Trust: "trusted"},
			{Name: "north", TrustDomain: "north.clusterset.local", Trust: "untrusted", TrustDetail: "not pinned"},
		}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() { _ = gs.Serve(ln) })
		t.Cleanup(func() { gs.Stop(); wg.Wait() })
		return ln.Addr().String()
	}
	admin, err := p.east.NewLeafKeyPair("admin", time.Hour, time.Now())
	require.NoError(t, err)
	certPath, keyPath := filepath.Join(p.dir, "admin.crt"), filepath.Join(p.dir, "admin.key")
	writeLeaf(t, admin, certPath, keyPath)
	target := cli.Target{Addr: serve("federator"), Cert: certPath, Key: keyPath, CA: p.eastBundle, Timeout: 5 * time.Second}

	l, err := certsctl.FetchBundles(t.Context(), target)
	require.NoError(t, err)
	require.Equal(t, int64(42), l.Revision)
	require.Len(t, l.Bundles, 4)
	require.Equal(t, "east", l.Bundles[0].Cluster)
	require.Len(t, l.Bundles[0].Authorities, 2)
	require.Empty(t, l.Bundles[0].Problems)
	require.Equal(t, uint64(9), l.Bundles[0].Sequence)
	require.Equal(t, "own", l.Bundles[0].Trust)
	// A cluster whose bundle the federator refuses is listed with the fix.
	require.Equal(t, "north", l.Bundles[1].Cluster)
	require.Equal(t, "untrusted", l.Bundles[1].Trust)
	require.Equal(t, []string{"untrusted: not pinned"}, l.Bundles[1].Problems)
	require.Equal(t, "rogue", l.Bundles[2].Cluster)
	require.Len(t, l.Bundles[2].Problems, 1)
	require.Contains(t, l.Bundles[2].Problems[0], "is not the cluster's")
	require.Empty(t, l.Bundles[3].Problems)
	require.Equal(t, "trusted", l.Bundles[3].Trust)
	b, err := json.Marshal(l)
	require.NoError(t, err)
	require.Contains(t, string(b), `"problems":[]`)
	// 64-bit sequences are strings in JSON: jq holds only 2^53 exactly.
	require.Contains(t, string(b), `"sequence":"9"`)
	big := certsctl.Bundle{Sequence: 1796455080182158963}
	b, err = json.Marshal(big)
	require.NoError(t, err)
	require.Contains(t, string(b), `"sequence":"1796455080182158963"`)
	var table bytes.Buffer
	require.NoError(t, cli.Print(&table, cli.FormatTable, l))
	require.Contains(t, table.String(), "west.clusterset.local")

	// A server that is not the federator is refused.
	target.Addr = serve("gateway")
	_, err = certsctl.FetchBundles(t.Context(), target)
	require.ErrorContains(t, err, "not spiffe://east.clusterset.local/federator")
}

func TestRotateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "east-ca")
	_, err := certsctl.Init(certsctl.InitOptions{Cluster: "east", Out: dir})
	require.NoError(t, err)
	now := time.Now()
	clock := func() time.Time { return now }
	o := certsctl.RotateOptions{Cluster: "east", Dir: dir, LeafLifetime: time.Hour, Now: clock}

	r, err := certsctl.RotateCA(certsctl.RotateOptions{Cluster: "east", Dir: dir, Status: true})
	require.NoError(t, err)
	require.Empty(t, r.Phase)
	require.Contains(t, r.Next, "no rotation in progress")

	r, err = certsctl.RotateCA(o)
	require.NoError(t, err)
	require.Equal(t, "published", r.Phase)
	require.Contains(t, r.Did, "step 1 of 3")
	require.Len(t, r.Bundle, 2)
	require.Contains(t, r.Next, "causeway certs bundles")

	// Too early for step 2: the report comes with the wait.
	r, err = certsctl.RotateCA(o)
	var wait *certs.RotationWaitError
	require.ErrorAs(t, err, &wait)
	require.NotNil(t, r)
	require.Empty(t, r.Did)
	require.Equal(t, "published", r.Phase)

	now = now.Add(certs.DefaultPropagationWait)
	r, err = certsctl.RotateCA(o)
	require.NoError(t, err)
	require.Equal(t, "reissued", r.Phase)
	require.Equal(t, r.State.NewSerial, r.Signing.Serial)
	require.WithinDuration(t, now.Add(time.Hour), r.NextStepAt, time.Second)

	o.Force = true
	r, err = certsctl.RotateCA(o)
	require.NoError(t, err)
	require.Equal(t, "done", r.Phase)
	require.Len(t, r.Bundle, 1)
	var table bytes.Buffer
	require.NoError(t, cli.Print(&table, cli.FormatTable, r))
	require.Contains(t, table.String(), "step 3 of 3")
	require.Contains(t, table.String(), "--restart")

	// Done stays done: a rerun only reports.
	r, err = certsctl.RotateCA(o)
	require.NoError(t, err)
	require.Empty(t, r.Did)

	_, err = certsctl.RotateCA(certsctl.RotateOptions{Cluster: "west", Dir: dir})
	require.ErrorContains(t, err, "not of cluster west")
	_, err = certsctl.RotateCA(certsctl.RotateOptions{Cluster: "east"})
	require.ErrorContains(t, err, "--dir")
}

// TestWriteAdminCredsExisting: writing into a directory that has the files
// says to pass --force, and --force overwrites.
func TestWriteAdminCredsExisting(t *testing.T) {
	ca, err := certs.NewCA("east.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	dir := t.TempDir()
	_, err = certsctl.WriteAdminCreds(ca, []*x509.Certificate{ca.Cert}, dir, time.Hour, time.Now(), false)
	require.NoError(t, err)
	_, err = certsctl.WriteAdminCreds(ca, []*x509.Certificate{ca.Cert}, dir, time.Hour, time.Now(), false)
	require.ErrorContains(t, err, "already exist: pass --force to overwrite them (nothing written)")
	_, err = certsctl.WriteAdminCreds(ca, []*x509.Certificate{ca.Cert}, dir, time.Hour, time.Now(), true)
	require.NoError(t, err)
}

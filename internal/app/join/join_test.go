package join

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startEtcd(t *testing.T) (string, *clientv3.Client) {
	t.Helper()
	srv, cli := etcdtest.Start(t)
	return "http://" + srv.Endpoint(), cli
}

func options(endpoint, cluster, out string) Options {
	return Options{Cluster: cluster, Region: "us-east", Zone: "us-east-1a", Out: out,
		Etcd: EtcdOptions{Endpoints: []string{endpoint}}, Advertise: []string{"gw." + cluster + ".example:4433"}}
}

// registered returns the cluster record and bundle of cluster in etcd.
func registered(t *testing.T, cli *clientv3.Client, cluster string) (*causewayv1.ClusterRecord, *causewayv1.TrustBundle) {
	t.Helper()
	var (
		rec    *causewayv1.ClusterRecord
		bundle *causewayv1.TrustBundle
	)
	for _, key := range []string{store.ClusterKey(cluster), store.BundleKey(cluster)} {
		resp, err := cli.Get(context.Background(), key)
		require.NoError(t, err)
		if len(resp.Kvs) == 0 {
			continue
		}
		e, err := store.DecodeEntry(key, resp.Kvs[0].Value)
		require.NoError(t, err)
		if e.GetCluster() != nil {
			rec = e.GetCluster()
		}
		if e.GetBundle() != nil {
			bundle = e.GetBundle()
		}
	}
	return rec, bundle
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

func TestJoinRegistersAndWritesInstallFiles(t *testing.T) {
	endpoint, cli := startEtcd(t)
	out := filepath.Join(t.TempDir(), "east")
	r, err := Run(context.Background(), options(endpoint, "east", out))
	require.NoError(t, err)
	require.False(t, r.Replaced)
	require.Equal(t, "east.clusterset.local", r.TrustDomain)
	require.Equal(t, "causeway-east", r.EtcdUser)

	// etcd: the cluster record and a bundle that peers accept for east.
	rec, bundle := registered(t, cli, "east")
	require.NotNil(t, rec)
	require.Equal(t, "us-east", rec.GetRegion())
	require.Equal(t, "us-east-1a", rec.GetZone())
	require.Equal(t, "east.clusterset.local", rec.GetTrustDomain())
	require.NotNil(t, bundle)
	td, cas, err := certs.CheckPublishedBundle("east", bundle)
	require.NoError(t, err)
	require.Equal(t, "east.clusterset.local", td)
	ca, _, err := certs.LoadCADir(r.CADir)
	require.NoError(t, err)
	require.Len(t, cas, 1)
	require.True(t, cas[0].Equal(ca.Cert), "the published bundle is not the new CA")

	// Files and their modes.
	require.Equal(t, os.FileMode(0o700), mode(t, out))
	require.Equal(t, os.FileMode(0o700), mode(t, r.CADir))
	require.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(r.CADir, certs.CAKeyFile)))
	require.Equal(t, os.FileMode(0o600), mode(t, r.CASecret))
	require.Equal(t, os.FileMode(0o644), mode(t, r.ValuesFile))
	require.Equal(t, os.FileMode(0o600), mode(t, r.EtcdSecret))
	require.Equal(t, os.FileMode(0o600), mode(t, r.EtcdPasswordFile))

	// The cluster's own etcd user and role exist, the role confined to east.
	role, err := cli.RoleGet(context.Background(), "causeway-east")
	require.NoError(t, err)
	require.Len(t, role.Perm, len(store.ClusterRolePermissions("east")))
	user, err := cli.UserGet(context.Background(), "causeway-east")
	require.NoError(t, err)
	require.Equal(t, []string{"causeway-east"}, user.Roles)

	// The CA Secret carries the CA directory byte for byte.
	var sec corev1.Secret
	b, err := os.ReadFile(r.CASecret)
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(b, &sec))
	require.Equal(t, DefaultCASecret, sec.Name)
	require.Equal(t, DefaultNamespace, sec.Namespace)
	for _, name := range []string{certs.CACertFile, certs.CAKeyFile, certs.BundleFile} {
		want, err := os.ReadFile(filepath.Join(r.CADir, name))
		require.NoError(t, err)
		require.Equal(t, want, sec.Data[name], name)
	}

	// The values file names the cluster, its etcd and its Secret.
	var values struct {
		Cluster, Domain, Region, Zone string
		CA                            struct{ SecretName string } `json:"ca"`
		Etcd                          struct{ Endpoints []string }
		Gateway                       struct{ Advertise []string }
	}
	b, err = os.ReadFile(r.ValuesFile)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &values))
	require.Equal(t, "east", values.Cluster)
	require.Equal(t, "clusterset.local", values.Domain)
	require.Equal(t, "us-east-1a", values.Zone)
	require.Equal(t, DefaultCASecret, values.CA.SecretName)
	require.Equal(t, []string{endpoint}, values.Etcd.Endpoints)
	require.Equal(t, []string{"gw.east.example:4433"}, values.Gateway.Advertise)
}

func TestJoinNeverOverwritesWithoutForce(t *testing.T) {
	endpoint, cli := startEtcd(t)
	dir := t.TempDir()
	ctx := context.Background()
	first, err := Run(ctx, options(endpoint, "east", filepath.Join(dir, "east")))
	require.NoError(t, err)
	_, bundle := registered(t, cli, "east")

	// The same cluster again, elsewhere: refused by etcd, nothing written.
	again := filepath.Join(dir, "east-again")
	_, err = Run(ctx, options(endpoint, "east", again))
	require.ErrorIs(t, err, ErrRegistered)
	_, statErr := os.Stat(again)
	require.ErrorIs(t, statErr, fs.ErrNotExist, "a refused join wrote files")
	_, after := registered(t, cli, "east")
	require.Equal(t, bundle.GetX509Authorities(), after.GetX509Authorities(), "a refused join changed the bundle")

	// Another cluster into the same directory: refused before etcd is touched.
	_, err = Run(ctx, options(endpoint, "west", filepath.Join(dir, "east")))
	require.ErrorIs(t, err, fs.ErrExist)
	rec, b := registered(t, cli, "west")
	require.Nil(t, rec)
	require.Nil(t, b)

	// --force replaces the CA, the files and the registration.
	keyBefore, err := os.ReadFile(filepath.Join(first.CADir, certs.CAKeyFile))
	require.NoError(t, err)
	o := options(endpoint, "east", filepath.Join(dir, "east"))
	o.Force = true
	r, err := Run(ctx, o)
	require.NoError(t, err)
	require.True(t, r.Replaced)
	keyAfter, err := os.ReadFile(filepath.Join(r.CADir, certs.CAKeyFile))
	require.NoError(t, err)
	require.NotEqual(t, keyBefore, keyAfter)
	ca, _, err := certs.LoadCADir(r.CADir)
	require.NoError(t, err)
	_, after = registered(t, cli, "east")
	require.Equal(t, certs.AuthoritiesDER([]*x509.Certificate{ca.Cert}), after.GetX509Authorities())
}

func TestJoinRegistrationRaceRemovesItsFiles(t *testing.T) {
	endpoint, cli := startEtcd(t)
	// Someone registers east between the check and the transaction: the
	// clock of the join does it, as it is read after the check.
	o := options(endpoint, "east", filepath.Join(t.TempDir(), "east"))
	raced := false
	o.Now = func() time.Time {
		if !raced {
			raced = true
			_, err := cli.Put(context.Background(), store.ClusterKey("east"), "taken")
			require.NoError(t, err)
		}
		return time.Now()
	}
	_, err := Run(context.Background(), o)
	require.ErrorIs(t, err, ErrRegistered)
	for _, name := range []string{certs.CACertFile, certs.CAKeyFile, certs.BundleFile} {
		_, statErr := os.Stat(filepath.Join(o.Out, CADirName, name))
		require.ErrorIs(t, statErr, fs.ErrNotExist, name)
	}
	resp, err := cli.Get(context.Background(), store.BundleKey("east"), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count, "the losing join published a bundle")
}

func TestEtcdSecretCarriesCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	// The clusterset admin's credentials given to join: none of them
	// reaches the cluster's Secret, only the CA and the cluster's own user.
	o := Options{Cluster: "east", Namespace: "causeway", EtcdSecret: "causeway-etcd", Etcd: EtcdOptions{
		CAFile: write("ca.crt", "CA"), CertFile: write("c.crt", "CERT"), KeyFile: write("c.key", "KEY"),
		Username: "causeway-clusterset-admin", PasswordFile: write("pw", "admin-s3cret\n"),
	}}
	b, err := etcdSecretManifest(o, "east-s3cret")
	require.NoError(t, err)
	var sec corev1.Secret
	require.NoError(t, yaml.UnmarshalStrict(b, &sec))
	require.Equal(t, map[string][]byte{"ca.crt": []byte("CA"), "password": []byte("east-s3cret")}, sec.Data)
	require.Contains(t, string(valuesFile(o)), "secretName: \"causeway-etcd\"")
	require.Contains(t, string(valuesFile(o)), "username: \"causeway-east\"")
	require.Contains(t, string(valuesFile(o)), "clientCert: false")
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Cluster: "east", Out: "x", Etcd: EtcdOptions{Endpoints: []string{"http://127.0.0.1:2379"}}}
	for name, mutate := range map[string]func(*Options){
		"bad cluster":      func(o *Options) { o.Cluster = "East_1" },
		"no out":           func(o *Options) { o.Out = "" },
		"no etcd":          func(o *Options) { o.Etcd.Endpoints = nil },
		"cert without key": func(o *Options) { o.Etcd.CertFile = "c" },
		"user without pw":  func(o *Options) { o.Etcd.Username = "u" },
		"bad advertise":    func(o *Options) { o.Advertise = []string{"nohost"} },
		"bad namespace":    func(o *Options) { o.Namespace = "Bad" },
	} {
		t.Run(name, func(t *testing.T) {
			o := ok
			mutate(&o)
			o.defaults()
			require.Error(t, o.Validate())
		})
	}
	o := ok
	o.defaults()
	require.NoError(t, o.Validate())
	_, err := Run(context.Background(), Options{Cluster: "east"})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrRegistered))
}

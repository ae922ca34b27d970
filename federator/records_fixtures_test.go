package federator

import (
	"context"
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// healWithin bounds how long a federator may take to put back one of its
// records ("within seconds").
const healWithin = 5 * time.Second

// recordsCluster is an adminCluster whose exports file the test can
// rewrite and whose config it can adjust.
type recordsCluster struct {
	*adminCluster
	path string // the static exports file
}

// startRecordsCluster runs a federator for name like startAdminCluster,
// after mutate (if any) adjusted its config.
func startRecordsCluster(t *testing.T, cli *clientv3.Client, name string, idx int, exports string, mutate func(*Config)) *recordsCluster {
	t.Helper()
	td := certs.TrustDomainFor(name, "clusterset.local")
	ca, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(exports), 0o644))
	cfg := Config{Cluster: name, Region: "r-" + name, Zone: "z-" + name, TrustDomain: td,
		VIPRanges:   []netip.Prefix{netip.MustParsePrefix("10.0." + strconv.Itoa(idx) + ".0/24")},
		Authorities: certs.AuthoritiesDER([]*x509.Certificate{ca.Cert}), Instance: name + "-0"}
	if mutate != nil {
		mutate(&cfg)
	}
	c := &recordsCluster{adminCluster: &adminCluster{name: name, td: td, ca: ca}, path: path}
	c.start(t, cli, cfg)
	return c
}

// start runs a new federator (a fresh Store: nothing cached) with cfg.
func (c *recordsCluster) start(t *testing.T, cli *clientv3.Client, cfg Config) {
	t.Helper()
	f, err := New(cfg, store.New(cli, store.Options{}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx, &static.Source{Path: c.path, Cluster: c.name, Interval: 20 * time.Millisecond})
	}()
	c.fed = f
	c.stop = func() { cancel(); <-done }
	t.Cleanup(c.stop)
}

// waitEtcd waits, at most within, until cond holds for the value at key
// (nil when the key is absent).
func waitEtcd(t *testing.T, cli *clientv3.Client, key string, within time.Duration, what string, cond func(kv []byte, lease int64) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Get(ctx, key)
		cancel()
		if err == nil {
			var v []byte
			var lease int64
			if len(resp.Kvs) == 1 {
				v, lease = resp.Kvs[0].Value, resp.Kvs[0].Lease
			}
			if cond(v, lease) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error %v)", what, within, err)
		}
		time.Sleep(50 * time.Millisecond) // polling etcd; bounded by the deadline above
	}
}

// decodes reports whether a value is a good record of the key.
func decodes(key string) func([]byte) *causewayv1.Entry {
	return func(v []byte) *causewayv1.Entry {
		if v == nil {
			return nil
		}
		e, err := store.DecodeEntry(key, v)
		if err != nil {
			return nil
		}
		return e
	}
}

// rawPut writes a raw value at a key, as an etcd writer with no
// federator's help would.
func rawPut(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, key, value)
	require.NoError(t, err)
	return resp.Header.Revision
}

// rawDelete deletes a key (or, with prefix, a prefix) as an etcd writer.
func rawDelete(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cli.Delete(ctx, key, opts...)
	require.NoError(t, err)
}

// marshalRaw is m's protobuf bytes exactly as given (no version stamped).
func marshalRaw(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

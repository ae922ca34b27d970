package authzfile

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

const domain = "clusterset.local"

var echo = authz.ServiceKey{Namespace: "demo", Name: "echo"}

// file is a valid authorization file: 10.1.0.0/16 is shop/<sa>, and only
// east's shop/cart may call demo/echo.
func file(sa string) string {
	return `version: 1
identities:
- {cidr: 10.1.0.0/16, namespace: shop, serviceAccount: ` + sa + `}
policies:
- metadata: {namespace: demo, name: echo-callers}
  spec:
    service: echo
    rules:
    - from: [{cluster: east, namespace: shop, serviceAccount: cart}]
`
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
}

func principal(t testing.TB, cluster, sa string) authz.Principal {
	t.Helper()
	p, err := authz.NewPrincipal(cluster, domain, "shop", sa)
	require.NoError(t, err)
	return p
}

// runSource starts s.Run and stops it at cleanup; the returned function
// waits until n more checks have run.
func runSource(t *testing.T, s *Source) (waitChecks func(n int64)) {
	t.Helper()
	var checks atomic.Int64
	s.watch.Checked = func() { checks.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return func(n int64) {
		t.Helper()
		target := checks.Load() + n
		require.Eventually(t, func() bool { return checks.Load() >= target }, 10*time.Second, time.Millisecond)
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"unknown field", "version: 1\npolicies:\n- metadata: {namespace: demo, name: a}\n  spec: {service: echo, rulez: []}\n",
			[]string{"line 4", "rulez"}},
		{"bad cidr", "version: 1\nidentities:\n- {cidr: 10.1.0.1/16, namespace: shop, serviceAccount: cart}\n",
			[]string{"identities[0].cidr", "10.1.0.0/16"}},
		{"bad policy", "version: 1\npolicies:\n- metadata: {namespace: demo, name: a}\n  spec: {service: echo, rules: [{from: [{namespace: Shop}]}]}\n",
			[]string{"policies[0] (demo/a)", "namespace"}},
		{"no version", "identities: []\n", []string{"version"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "authz.yaml")
			writeFile(t, path, c.body)
			_, err := New(Config{Path: path, Cluster: "west", Domain: domain})
			require.Error(t, err)
			require.Contains(t, err.Error(), path)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := New(Config{Path: filepath.Join(dir, "missing.yaml"), Cluster: "west", Domain: domain})
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestSourceKeepsLastGood: the file serves identities and policies; a bad
// version keeps the last good one (counted once), a good one replaces it.
func TestSourceKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authz.yaml")
	writeFile(t, path, file("cart"))
	reg := prometheus.NewRegistry()
	s, err := New(Config{Path: path, Cluster: "east", Domain: domain, Interval: time.Millisecond, Registerer: reg})
	require.NoError(t, err)
	client := netip.MustParseAddr("10.1.2.3")
	require.Equal(t, principal(t, "east", "cart"), s.Resolve(client))
	require.True(t, s.Resolve(netip.MustParseAddr("10.2.0.1")).IsAnonymous())
	require.True(t, s.Snapshot().Decide(echo, 8080, principal(t, "east", "cart"), nil).Allowed)
	require.False(t, s.Snapshot().Decide(echo, 8080, principal(t, "east", "other"), nil).Allowed)

	wait := runSource(t, s)
	writeFile(t, path, "version: 1\nidentities: [{cidr: nope}]\n")
	wait(3)
	require.Equal(t, principal(t, "east", "cart"), s.Resolve(client), "the last good identities stay")
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.rejected))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.reloads.WithLabelValues(resultRejected)), "counted once")

	writeFile(t, path, file("other"))
	require.Eventually(t, func() bool { return s.Resolve(client) == principal(t, "east", "other") }, 10*time.Second, time.Millisecond)
	wait(1)
	require.Equal(t, 0.0, testutil.ToFloat64(s.metrics.rejected))
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.reloads.WithLabelValues(resultLoaded)))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.entries.WithLabelValues("policies")))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

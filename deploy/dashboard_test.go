package deploy

import (
	"crypto/tls"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/dnsshim"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// DashboardFile is the Grafana dashboard, relative to the repository root.
const DashboardFile = "deploy/grafana/causeway.json"

// recorder is a prometheus.Registerer that records the name of every
// metric each registered collector describes.
type recorder struct {
	mu    sync.Mutex
	names map[string]bool
}

var _ prometheus.Registerer = (*recorder)(nil)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

// registeredMetrics constructs every component's metrics the way the
// processes do (federator with its store and Certs.Sign, gateway, DNS shim,
// catalog clients) on a recorder and returns the names registered.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{names: map[string]bool{}}
	td := "east.clusterset.local"

	st := store.New(nil, store.Options{Registerer: rec})
	_, err := federator.New(federator.Config{Cluster: "east", TrustDomain: td, Authorities: [][]byte{{1}}, Registerer: rec,
		VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.255.0.0/24")}}, st)
	require.NoError(t, err)
	ca, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	cas, err := certs.NewCASet(ca, nil)
	require.NoError(t, err)
	auth, err := federator.NewJoinTokenAuthenticator(map[string]string{strings.Repeat("x", federator.MinJoinTokenLength): "gateway"})
	require.NoError(t, err)
	_, err = federator.NewCertsServer(federator.CertsServerConfig{Cluster: "east", TrustDomain: td, CA: cas, Authenticator: auth, Registerer: rec})
	require.NoError(t, err)
	_, err = federator.NewWatchLimiter(federator.WatchLimitConfig{Registerer: rec})
	require.NoError(t, err)

	for _, component := range []string{"gateway", "dnsshim"} {
		catalog.NewClient(nil, catalog.Options{Cluster: "east", Component: component, Registerer: rec})
	}
	feed := catalog.NewFeed()
	_, err = gateway.New(gateway.Config{Cluster: "east", Registerer: rec}, feed, certs.NewStaticSource(&tls.Certificate{}))
	require.NoError(t, err)
	_, err = dnsshim.New(dnsshim.Config{Zone: "clusterset.local.", Cluster: "east", Registerer: rec}, feed)
	require.NoError(t, err)
	require.NoError(t, certs.RegisterExpiry(rec, "gateway", certs.NewStaticSource(&tls.Certificate{})))
	return rec.names
}

// dashboardMetrics returns every causeway_* name the dashboard's queries
// use, with histogram series suffixes mapped to their metric.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), DashboardFile))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(b, &dash), "the dashboard is not valid JSON")
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	name := regexp.MustCompile(`causeway_[a-z0-9_]+`)
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestDashboardNamesRegisteredMetrics fails when the Grafana dashboard
// queries a causeway_* metric no component registers.
func TestDashboardNamesRegisteredMetrics(t *testing.T) {
	registered := registeredMetrics(t)
	require.NotEmpty(t, registered)
	used := dashboardMetrics(t)
	require.NotEmpty(t, used)
	for _, n := range used {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && registered[b] {
				base = b
			}
		}
		require.True(t, registered[base], "the dashboard queries %s, which no component registers", n)
	}
	// Coverage the other way: every registered series is on the dashboard.
	var unused []string
	for n := range registered {
		if !slices.ContainsFunc(used, func(u string) bool { return strings.HasPrefix(u, n) }) {
			unused = append(unused, n)
		}
	}
	slices.Sort(unused)
	require.Empty(t, unused, "metrics the dashboard does not show")
}

package gateway

import (
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/stretchr/testify/require"
)

// egressCandidatesView builds a view: clusters (name → region/zone), each with
// one gateway record unless listed in noGateway, each exporting demo/echo
// on port 80 with one ready endpoint.
func egressCandidatesView(clusters map[string][2]string, noGateway ...string) *catalog.View {
	entries := map[string]*causewayv1.Entry{}
	add := func(e *causewayv1.Entry) { entries[e.GetKey()] = e }
	skipGW := map[string]bool{}
	for _, c := range noGateway {
		skipGW[c] = true
	}
	for name, rz := range clusters {
		add(&causewayv1.Entry{Key: "clusters/" + name, Record: &causewayv1.Entry_Cluster{Cluster: &causewayv1.ClusterRecord{
			Name: name, Region: rz[0], Zone: rz[1]}}})
		if !skipGW[name] {
			add(egressGatewayEntry(name, "gw-0", "127.0.0.1:1"))
		}
		add(&causewayv1.Entry{Key: "exports/demo/echo/" + name, Record: &causewayv1.Entry_Export{Export: &causewayv1.ExportRecord{
			Namespace: "demo", Name: "echo", Cluster: name, ReadyPerZone: map[string]uint32{"z": 1},
			Ports: []*causewayv1.ServicePort{{Port: 80, Protocol: causewayv1.Protocol_PROTOCOL_TCP}}}}})
	}
	return catalog.NewView(entries, 1)
}

// seq returns an IntN that replays picks (each taken modulo n).
func egressSeq(picks ...int) func(int) int {
	i := 0
	return func(n int) int {
		p := picks[i%len(picks)]
		i++
		return p % n
	}
}

// Over 80 lines: a table of cases, each a few lines.
func TestSelectorCandidates(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	topo := map[string][2]string{
		"self": {"r1", "z1"}, "za": {"r1", "z1"}, "zb": {"r1", "z1"}, "zc": {"r1", "z1"},
		"ra": {"r1", "z2"}, "rb": {"r1", "z3"}, "far": {"r2", "z9"},
	}
	type want struct {
		order    []string          // usable, in order
		last     []string          // last resorts, in order
		skipped  map[string]string // reason by cluster
		openSeen map[string]int
	}
	tests := []struct {
		name      string
		from      string
		noGateway []string
		sel       Selector
		want      want
	}{
		{
			name: "tiers in order, p2c prefers the less loaded",
			from: "self",
			sel: Selector{
				Load: func(c string) int { return map[string]int{"za": 5, "zb": 1, "zc": 3, "ra": 2, "rb": 0}[c] },
				// Tier same zone [za zb zc]: pairs (0,1)→zb; then of [za zc] (0,0→1)→zc; za.
				// Tier same region [ra rb]: (0,0→1)→rb; ra.
				IntN: egressSeq(0, 0),
			},
			want: want{order: []string{"self", "zb", "zc", "za", "rb", "ra", "far"}, skipped: map[string]string{},
				openSeen: map[string]int{"za": 5, "zb": 1}},
		},
		{
			name: "ties go to the first draw",
			from: "self",
			sel:  Selector{IntN: egressSeq(2, 0)},
			// same zone [za zb zc]: a=2 (zc), b=0 (za), tie → zc; then [zb za]: a=0 (zb)... (2%2=0), b=0→1 (za) tie → zb.
			want: want{order: []string{"self", "zc", "zb", "za", "ra", "rb", "far"}, skipped: map[string]string{}},
		},
		{
			name: "ejected clusters become last resorts, by tier then re-admission",
			from: "self",
			sel: Selector{IntN: egressSeq(0, 0), EjectedUntil: func(c string) time.Time {
				switch c {
				case "far":
					return t0.Add(time.Second)
				case "zb":
					return t0.Add(10 * time.Second)
				case "self":
					return t0.Add(5 * time.Second)
				}
				return time.Time{}
			}},
			want: want{order: []string{"za", "zc", "ra", "rb"}, last: []string{"self", "zb", "far"}, skipped: map[string]string{
				"self": "ejected until 2026-01-02T03:04:10Z",
				"zb":   "ejected until 2026-01-02T03:04:15Z",
				"far":  "ejected until 2026-01-02T03:04:06Z",
			}},
		},
		{
			name:      "own cluster needs no gateway; others do",
			from:      "self",
			noGateway: []string{"self", "far"},
			sel:       Selector{IntN: egressSeq(0, 0)},
			want: want{order: []string{"self", "za", "zb", "zc", "ra", "rb"},
				skipped: map[string]string{"far": SkipLeaseExpired}},
		},
		{
			name: "from a cluster without a record everything is other",
			from: "ghost",
			sel:  Selector{IntN: egressSeq(0, 0)},
			want: want{order: []string{"far", "ra", "rb", "self", "za", "zb", "zc"}, skipped: map[string]string{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := egressCandidatesView(topo, tc.noGateway...)
			got := tc.sel.Candidates(v, tc.from, catalog.ServiceKey{Namespace: "demo", Name: "echo"}, 80)
			var order, last []string
			skipped := map[string]string{}
			for i, c := range got {
				switch {
				case c.Skip == "":
					require.Empty(t, last, "usable %s after a last resort", c.Cluster)
					order = append(order, c.Cluster)
				case c.LastResort():
					last = append(last, c.Cluster)
					skipped[c.Cluster] = c.Skip
				default:
					skipped[c.Cluster] = c.Skip
					for _, rest := range got[i:] {
						require.NotEmpty(t, rest.Skip, "usable after skipped")
						require.False(t, rest.LastResort(), "last resort after skipped")
					}
				}
				if n, ok := tc.want.openSeen[c.Cluster]; ok {
					require.Equal(t, n, c.OpenStreams, c.Cluster)
				}
			}
			require.Equal(t, tc.want.order, order)
			require.Equal(t, tc.want.last, last)
			require.Equal(t, tc.want.skipped, skipped)
		})
	}
}

// TestPowerOfTwoSpreads checks, with real randomness, that p2c over equal
// loads uses every cluster first sometimes, and never puts the most
// loaded of three first.
func TestPowerOfTwoSpreads(t *testing.T) {
	load := map[string]int{"a": 0, "b": 0, "c": 100}
	first := map[string]int{}
	for range 300 {
		cs := Selector{Load: func(c string) int { return load[c] }}.powerOfTwo([]Candidate{
			{Cluster: "a", OpenStreams: load["a"]}, {Cluster: "b", OpenStreams: load["b"]}, {Cluster: "c", OpenStreams: load["c"]}})
		first[cs[0].Cluster]++
	}
	require.Zero(t, first["c"], "the most loaded cluster of three went first")
	require.Positive(t, first["a"])
	require.Positive(t, first["b"])
}

// TestReconnectBackoff: no wait before the first re-dial, then doubling
// from ReconnectBackoff up to ReconnectBackoffMax, jittered in the upper
// half of the interval.
func TestReconnectBackoff(t *testing.T) {
	s := &peerSet{timing: peerTiming{backoff: 100 * time.Millisecond, backoffMax: 5 * time.Second}}
	require.Zero(t, s.backoff(0))
	for attempt := 1; attempt <= 70; attempt++ {
		want := 5 * time.Second
		if attempt <= 6 {
			want = 100 * time.Millisecond << (attempt - 1)
		}
		for range 20 {
			d := s.backoff(attempt)
			require.GreaterOrEqual(t, d, want/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, want, "attempt %d", attempt)
		}
	}
}

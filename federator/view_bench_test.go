package federator

import (
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/federator/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// benchViewMirror is a mirror of a federation of three clusters that
// each export and import n services, as the initial sync ends, and the
// export source of the first of them (east).
func benchViewMirror(n int) (raw map[string]*causewayv1.Entry, src []*causewayv1.ExportRecord) {
	raw = map[string]*causewayv1.Entry{}
	created := timestamppb.Now()
	for _, c := range []string{"east", "west", "north"} {
		rel := store.RelativeKey(store.BundleKey(c))
		raw[rel] = &causewayv1.Entry{Key: rel, Record: &causewayv1.Entry_Bundle{Bundle: &causewayv1.TrustBundle{
			SchemaVersion: store.SchemaVersion, Cluster: c, TrustDomain: c + ".bench.local", X509Authorities: [][]byte{{1}}}}}
		for i := range n {
			ns, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("svc-%d", i)
			x := &causewayv1.ExportRecord{Namespace: ns, Name: name, Cluster: c,
				Ports: []*causewayv1.ServicePort{{Name: "http", Port: 80}}}
			if c == "east" {
				src = append(src, x)
			}
			stored := &causewayv1.ExportRecord{Namespace: ns, Name: name, Cluster: c,
				Ports: []*causewayv1.ServicePort{{Name: "http", Port: 80}}, SchemaVersion: store.SchemaVersion, Created: created}
			rel = store.RelativeKey(store.ExportKeyOf(c, ns, name))
			raw[rel] = &causewayv1.Entry{Key: rel, Record: &causewayv1.Entry_Export{Export: stored}}
			rel = store.RelativeKey(store.ImportKey(c, ns, name))
			raw[rel] = &causewayv1.Entry{Key: rel, Record: &causewayv1.Entry_Import{Import: &causewayv1.ImportRecord{
				Namespace: ns, Name: name, Cluster: c, Clusters: []string{"east", "north", "west"}, Ips: []string{"10.64.0.1"}}}}
		}
	}
	return raw, src
}

// BenchmarkBuildView rebuilds east's served view of a federation of three
// clusters × 10,000 services with nothing changed in between, as the
// mirror does after every watch batch.
func BenchmarkBuildView(b *testing.B) {
	raw, src := benchViewMirror(10000)
	f, err := New(Config{Cluster: "east", TrustDomain: "east.bench.local", Authorities: [][]byte{{1}},
		VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/16")}, Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.setExports(b.Context(), src); err != nil {
		b.Fatal(err)
	}
	m := newRawMirror("east", raw)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.buildView(m, int64(i))
	}
}

package federator

// Federation benchmarks (run by bench/federation.sh and `make
// bench`). A real etcd runs in the test process; each of the three
// federators (east, west, north) runs in a child process of the test
// binary (TestBenchChild, benchchild_test.go) over a static exports file,
// so its peak RSS (VmHWM) is measured on its own. Linux only (/proc).
//
//	go test -run '^$' -bench Federation -benchtime 1x ./federator/
//
// Knobs (environment): CAUSEWAY_BENCH_SYNC_SERVICES (10000) services per
// cluster of the initial sync, CAUSEWAY_BENCH_SYNC_DEADLINE (10m) for it
// and for the convergence benchmark's base sync,
// CAUSEWAY_BENCH_CONV_SERVICES (100) base services per cluster and
// CAUSEWAY_BENCH_CONV_ROUNDS (200) add/remove rounds of the convergence
// benchmark, CAUSEWAY_BENCH_PROFILE_DIR (unset) where each child writes
// <bench>-<cluster>.cpu.pprof and .allocs.pprof.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Environment of a TestBenchChild process.
const (
	benchEnvCluster  = "CAUSEWAY_BENCH_CHILD"       // cluster name; unset: the child test skips
	benchEnvEtcd     = "CAUSEWAY_BENCH_ETCD"        // etcd client host:port
	benchEnvExports  = "CAUSEWAY_BENCH_EXPORTS"     // static exports file
	benchEnvVIPs     = "CAUSEWAY_BENCH_VIPS"        // VIP range (CIDR)
	benchEnvInterval = "CAUSEWAY_BENCH_INTERVAL"    // static source poll interval
	benchEnvTag      = "CAUSEWAY_BENCH_TAG"         // names the profiles
	benchEnvProfiles = "CAUSEWAY_BENCH_PROFILE_DIR" // optional profile directory
)

// benchClusters are the federation's clusters and their VIP ranges (a /16
// each: room for 10,000 services and more).
var benchClusters = []struct{ name, vips string }{
	{"east", "10.64.0.0/16"},
	{"west", "10.65.0.0/16"},
	{"north", "10.66.0.0/16"},
}

var (
	benchExportsPrefix = store.Prefix + store.KindExports + "/"
	benchImportsPrefix = store.Prefix + store.KindImports + "/"
)

// BenchmarkFederationInitialSync10k starts three federators at once, each
// exporting the same 10,000 services (so every import merges three
// exporters), and measures the wall time until etcd holds all 30,000
// exports and 30,000 imports, each with a clusterset IP and all three
// exporting clusters, plus each federator's peak RSS and CPU time.
// Targets: ≤ 30 s, ≤ 500 MB per federator.
func BenchmarkFederationInitialSync10k(b *testing.B) {
	benchRequireLinux(b)
	n := benchEnvInt(b, "CAUSEWAY_BENCH_SYNC_SERVICES", 10000)
	deadline := benchEnvDuration(b, "CAUSEWAY_BENCH_SYNC_DEADLINE", 10*time.Minute)
	want := int64(n * len(benchClusters))
	var syncS, exportsS, importsS float64
	rss := map[string]float64{}
	cpu := map[string]float64{}
	for range b.N {
		fed := startBenchFederation(b, "sync", 100*time.Millisecond)
		for i, c := range benchClusters {
			fed.writeExports(c.name, benchServices(i, n))
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		for _, c := range benchClusters {
			fed.startChild(c.name, c.vips)
		}
		st, err := fed.waitSynced(ctx, start, want)
		syncS, exportsS, importsS = st.synced, st.exports, st.imports
		cancel()
		for _, c := range benchClusters {
			ch := fed.children[c.name]
			ch.stop()
			rss[c.name] = float64(ch.peakRSS) / (1 << 20)
			cpu[c.name] = ch.cpu.Seconds()
		}
		fed.close()
		if err != nil {
			var so []string
			for _, c := range benchClusters {
				so = append(so, fmt.Sprintf("%s %.0f MB peak RSS, %.1f s CPU", c.name, rss[c.name], cpu[c.name]))
			}
			b.Fatalf("initial sync of %d services × %d clusters: %v; so far: %s",
				n, len(benchClusters), err, strings.Join(so, "; "))
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(syncS, "sync-s")
	b.ReportMetric(exportsS, "exports-s")
	b.ReportMetric(importsS, "imports-s")
	maxRSS := 0.0
	for _, c := range benchClusters {
		b.ReportMetric(rss[c.name], c.name+"-peak-RSS-MB")
		b.ReportMetric(cpu[c.name], c.name+"-cpu-s")
		maxRSS = max(maxRSS, rss[c.name])
	}
	b.ReportMetric(maxRSS, "max-peak-RSS-MB")
}

// BenchmarkFederationConvergence runs three federators over a base set of
// services exported by all three, then, round after round, adds a new
// service to east's exports file and measures the time until the imports
// of west and north appear in etcd (timestamped by a watch), then removes
// it and measures the time until both imports are deleted. The static
// source polls its file every 10ms, which is part of the figure. Target:
// p99 ≤ 500 ms.
// Over 80 lines: one measurement whose phases share the federation it starts.
func BenchmarkFederationConvergence(b *testing.B) {
	benchRequireLinux(b)
	base := benchEnvInt(b, "CAUSEWAY_BENCH_CONV_SERVICES", 100)
	rounds := benchEnvInt(b, "CAUSEWAY_BENCH_CONV_ROUNDS", 200)
	deadline := benchEnvDuration(b, "CAUSEWAY_BENCH_SYNC_DEADLINE", 10*time.Minute)
	fed := startBenchFederation(b, "conv", 10*time.Millisecond)
	defer fed.close()
	for i, c := range benchClusters {
		fed.writeExports(c.name, benchServices(i, base))
		fed.startChild(c.name, c.vips)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := fed.waitSynced(ctx, time.Now(), int64(base*len(benchClusters))); err != nil {
		b.Fatalf("sync of the %d base services: %v", base, err)
	}
	resp, err := fed.cli.Get(ctx, benchImportsPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		b.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := fed.cli.Watch(wctx, benchImportsPrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))

	// await waits for the event of kind typ on the import of ns/name of
	// every cluster and returns when west's and north's had arrived.
	await := func(ns, name string, typ mvccpb.Event_EventType) time.Time {
		b.Helper()
		arrived := map[string]time.Time{}
		timeout := time.NewTimer(time.Minute)
		defer timeout.Stop()
		for len(arrived) < len(benchClusters) {
			select {
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					b.Fatalf("watch imports: closed: %v", wr.Err())
				}
				now := time.Now()
				for _, ev := range wr.Events {
					for _, c := range benchClusters {
						if ev.Type == typ && string(ev.Kv.Key) == store.ImportKey(c.name, ns, name) {
							if _, seen := arrived[c.name]; !seen {
								arrived[c.name] = now
							}
						}
					}
				}
			case <-timeout.C:
				b.Fatalf("imports of %s/%s: no %v event from every cluster within a minute (got %v)", ns, name, typ, arrived)
			}
		}
		return later(arrived["west"], arrived["north"])
	}

	var adds, dels []time.Duration
	east := benchServices(0, base)
	b.ResetTimer()
	for range b.N {
		for range rounds {
			name := fmt.Sprintf("conv-%d", len(adds))
			fed.writeExports("east", append(slices.Clip(east), benchService{ns: "bench-conv", name: name, ip: "10.200.0.1"}))
			t0 := time.Now()
			adds = append(adds, await("bench-conv", name, clientv3.EventTypePut).Sub(t0))
			fed.writeExports("east", east)
			t0 = time.Now()
			dels = append(dels, await("bench-conv", name, clientv3.EventTypeDelete).Sub(t0))
		}
	}
	b.StopTimer()
	for _, c := range benchClusters {
		fed.children[c.name].stop()
	}
	all := append(slices.Clone(adds), dels...)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchPercentileMs(all, 50), "p50-ms")
	b.ReportMetric(benchPercentileMs(all, 99), "p99-ms")
	b.ReportMetric(benchPercentileMs(adds, 50), "add-p50-ms")
	b.ReportMetric(benchPercentileMs(adds, 99), "add-p99-ms")
	b.ReportMetric(benchPercentileMs(dels, 50), "del-p50-ms")
	b.ReportMetric(benchPercentileMs(dels, 99), "del-p99-ms")
	b.ReportMetric(benchPercentileMs(all, 100), "max-ms")
	b.ReportMetric(float64(len(all)), "samples")
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// benchPercentileMs is the p-th percentile (nearest rank) of ds in ms.
func benchPercentileMs(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return float64(s[max(i, 0)].Microseconds()) / 1000
}

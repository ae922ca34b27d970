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
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/embedetcd"
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

// benchFederation is the etcd of one benchmark run and its federator
// children.
type benchFederation struct {
	b        *testing.B
	tag      string
	interval time.Duration
	dir      string
	etcd     *embedetcd.Server
	cli      *clientv3.Client
	st       *store.Store
	children map[string]*benchChild
}

func startBenchFederation(b *testing.B, tag string, interval time.Duration) *benchFederation {
	b.Helper()
	dir := b.TempDir()
	srv, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		b.Fatalf("start etcd: %v", err)
	}
	cli, err := srv.Client()
	if err != nil {
		srv.Close()
		b.Fatal(err)
	}
	fed := &benchFederation{b: b, tag: tag, interval: interval, dir: dir, etcd: srv, cli: cli,
		st: store.New(cli, store.Options{}), children: map[string]*benchChild{}}
	b.Cleanup(fed.close)
	return fed
}

// close stops the children, then etcd. Safe to call again.
func (f *benchFederation) close() {
	for _, ch := range f.children {
		ch.stop()
	}
	if f.etcd != nil {
		_ = f.cli.Close()
		f.etcd.Close()
		f.etcd = nil
	}
}

type benchService struct{ ns, name, ip string }

// benchServices are n services spread over 20 namespaces; the endpoint
// address depends on the cluster index.
func benchServices(cluster, n int) []benchService {
	out := make([]benchService, n)
	for i := range out {
		out[i] = benchService{
			ns:   fmt.Sprintf("bench-%02d", i%20),
			name: fmt.Sprintf("svc-%05d", i),
			ip:   fmt.Sprintf("10.%d.%d.%d", 100+cluster, i/250, 1+i%250),
		}
	}
	return out
}

// writeExports replaces cluster's exports file atomically (rename), so
// the polling source never reads half a file.
func (f *benchFederation) writeExports(cluster string, svcs []benchService) {
	f.b.Helper()
	var buf bytes.Buffer
	buf.WriteString("version: 1\nservices:\n")
	for _, s := range svcs {
		fmt.Fprintf(&buf, "- {namespace: %s, name: %s, ports: [{name: http, port: 8080}], endpoints: [{address: %s}]}\n", s.ns, s.name, s.ip)
	}
	path := f.exportsPath(cluster)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		f.b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		f.b.Fatal(err)
	}
}

func (f *benchFederation) exportsPath(cluster string) string {
	return filepath.Join(f.dir, cluster+".yaml")
}

// benchChild is one federator process.
type benchChild struct {
	b       *testing.B
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	logPath string
	done    bool
	peakRSS int64         // VmHWM read just before the stop, bytes
	cpu     time.Duration // user + system, after the exit
}

// startChild runs cluster's federator in a child process.
func (f *benchFederation) startChild(cluster, vips string) {
	f.b.Helper()
	logPath := filepath.Join(f.dir, cluster+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		f.b.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1", "-test.timeout=2h")
	cmd.Env = append(os.Environ(),
		benchEnvCluster+"="+cluster,
		benchEnvEtcd+"="+f.etcd.Endpoint(),
		benchEnvExports+"="+f.exportsPath(cluster),
		benchEnvVIPs+"="+vips,
		benchEnvInterval+"="+f.interval.String(),
		benchEnvTag+"="+f.tag,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		f.b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.b.Fatalf("start federator %s: %v", cluster, err)
	}
	f.children[cluster] = &benchChild{b: f.b, name: cluster, cmd: cmd, stdin: stdin, logPath: logPath}
}

// stop reads the child's peak RSS, closes its stdin and waits for it to
// exit (killing it after 30s). Safe to call again.
func (c *benchChild) stop() {
	if c.done {
		return
	}
	c.done = true
	hwm, err := benchVmHWM(c.cmd.Process.Pid)
	if err != nil {
		c.b.Errorf("peak RSS of federator %s: %v", c.name, err)
	}
	c.peakRSS = hwm
	_ = c.stdin.Close()
	kill := time.AfterFunc(30*time.Second, func() { _ = c.cmd.Process.Kill() })
	err = c.cmd.Wait()
	kill.Stop()
	if st := c.cmd.ProcessState; st != nil {
		c.cpu = st.UserTime() + st.SystemTime()
	}
	if err != nil {
		out, _ := os.ReadFile(c.logPath)
		c.b.Errorf("federator %s: %v; its output:\n%s", c.name, err, out)
	}
}

// benchVmHWM returns the peak resident set size of process pid.
func benchVmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// benchSyncTimes are the seconds from the start until etcd held every
// export, every import, and every import complete.
type benchSyncTimes struct{ exports, imports, synced float64 }

// waitSynced waits until etcd holds want exports and want imports, each
// import with a clusterset IP and every cluster as exporter. It polls
// key counts (cheap) until they are reached, then lists the imports:
// they are rewritten as exporters appear.
func (f *benchFederation) waitSynced(ctx context.Context, start time.Time, want int64) (benchSyncTimes, error) {
	var (
		t                    benchSyncTimes
		exports, imports, ok int64
	)
	err := benchPoll(ctx, 100*time.Millisecond, func() (bool, error) {
		var err error
		if exports < want {
			if exports, err = benchCount(ctx, f.cli, benchExportsPrefix); err != nil {
				return false, err
			}
			if exports >= want {
				t.exports = time.Since(start).Seconds()
			}
		}
		if imports < want {
			if imports, err = benchCount(ctx, f.cli, benchImportsPrefix); err != nil {
				return false, err
			}
			if imports >= want {
				t.imports = time.Since(start).Seconds()
			}
		}
		if exports < want || imports < want {
			return false, nil
		}
		ok, err = benchMergedImports(ctx, f.st, len(benchClusters))
		return ok >= want, err
	})
	t.synced = time.Since(start).Seconds()
	if err != nil {
		return t, fmt.Errorf("%w after %.1fs (exports %d, imports %d, complete imports %d of %d)",
			err, t.synced, exports, imports, ok, want)
	}
	return t, nil
}

// benchCount is the number of keys under prefix.
func benchCount(ctx context.Context, cli *clientv3.Client, prefix string) (int64, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Count, nil
}

// benchMergedImports is the number of imports with a clusterset IP and
// clusters exporters.
func benchMergedImports(ctx context.Context, st *store.Store, clusters int) (int64, error) {
	entries, _, err := st.List(ctx, benchImportsPrefix)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if imp := e.GetImport(); len(imp.GetIps()) > 0 && len(imp.GetClusters()) == clusters {
			n++
		}
	}
	return n, nil
}

// benchPoll calls cond every interval until it reports done, fails, or
// ctx ends.
func benchPoll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := cond()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func benchRequireLinux(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("the federation benchmarks read peak RSS from /proc (Linux only)")
	}
}

func benchEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func benchEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return d
}

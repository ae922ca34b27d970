package federator

// The federation benchmarks' harness: an etcd in the test process, one
// child process per federator, and the polls that time convergence.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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

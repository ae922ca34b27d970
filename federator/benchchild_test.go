//go:build linux

package federator

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestBenchChild is one federator of the federation benchmarks
// (bench_test.go), run in a child process of the test binary so that its
// peak RSS is its own. It skips unless benchEnvCluster is set. It runs the
// federator of that cluster over the static exports file benchEnvExports
// against the etcd at benchEnvEtcd until stdin is closed (the parent's way
// of stopping it; also when the parent dies) or SIGTERM/SIGINT arrives.
// With benchEnvProfiles set it writes there a CPU profile and an
// allocation profile of the whole run, and a heap profile taken when it is
// told to stop (before the federator stops).
func TestBenchChild(t *testing.T) {
	cluster := os.Getenv(benchEnvCluster)
	if cluster == "" {
		t.Skip("a federator of the federation benchmarks; run by them as a child process")
	}
	vips, err := netip.ParsePrefix(os.Getenv(benchEnvVIPs))
	require.NoError(t, err, benchEnvVIPs)
	interval, err := time.ParseDuration(os.Getenv(benchEnvInterval))
	require.NoError(t, err, benchEnvInterval)

	var heapProfile string // written at the stop, while the federator still runs
	if dir := os.Getenv(benchEnvProfiles); dir != "" {
		prefix := filepath.Join(dir, os.Getenv(benchEnvTag)+"-"+cluster)
		heapProfile = prefix + ".heap.pprof"
		cpu, err := os.Create(prefix + ".cpu.pprof")
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(cpu))
		defer func() { // after the federator stopped (deferred first, runs last)
			pprof.StopCPUProfile()
			require.NoError(t, cpu.Close())
			runtime.GC()
			allocs, err := os.Create(prefix + ".allocs.pprof")
			require.NoError(t, err)
			require.NoError(t, pprof.Lookup("allocs").WriteTo(allocs, 0))
			require.NoError(t, allocs.Close())
		}()
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stopSignals()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A non-blocking stdin is served by the runtime poller, so closing it
	// below ends the reader on the SIGTERM path too (no leaked goroutine).
	require.NoError(t, syscall.SetNonblock(0, true))
	stdin := os.NewFile(0, "stdin")
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(io.Discard, stdin)
		if heapProfile != "" && ctx.Err() == nil {
			if h, err := os.Create(heapProfile); err == nil {
				runtime.GC()
				_ = pprof.Lookup("heap").WriteTo(h, 0)
				_ = h.Close()
			}
		}
		cancel()
	})
	defer func() { _ = stdin.Close(); wg.Wait() }()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{os.Getenv(benchEnvEtcd)},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	require.NoError(t, err)
	defer func() { _ = cli.Close() }()

	f, err := New(Config{
		Cluster: cluster, Region: "bench", Zone: cluster + "-a",
		VIPRanges:   []netip.Prefix{vips},
		TrustDomain: cluster + ".bench.local", Authorities: [][]byte{{1}},
		Instance: cluster + "-bench", Logger: log,
	}, store.New(cli, store.Options{Logger: log}))
	require.NoError(t, err)
	src := &static.Source{Path: os.Getenv(benchEnvExports), Cluster: cluster, Interval: interval, Logger: log}
	require.NoError(t, f.Run(ctx, src))
}

package routefile

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// route is a valid routes file with one HTTPRoute named name.
func route(name string) string {
	return `version: 1
httpRoutes:
- metadata: {namespace: demo, name: ` + name + `}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 8081}]
    rules:
    - backendRefs:
      - {group: causeway.dev, kind: Cluster, name: east, weight: 90}
      - {group: causeway.dev, kind: Cluster, name: west, weight: 10}
`
}

// errorLog keeps the messages of the records logged at ERROR.
type errorLog struct {
	mu     sync.Mutex
	errors []string // guarded by mu
}

func (h *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errors = append(h.errors, b.String())
	return nil
}
func (h *errorLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorLog) WithGroup(string) slog.Handler      { return h }

func (h *errorLog) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errors...)
}

// writeFile replaces path with body at once (a temporary file renamed
// over it), as editors do: a check never sees half a file, which would be
// a bad version of its own.
func writeFile(t testing.TB, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// runSource starts s.Run and stops it at cleanup. It returns a function
// that waits until n more checks have run.
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

func TestNewFailsOnABadFile(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"unknown field": {"version: 1\nhttpRoutes:\n- metadata: {namespace: demo, name: r}\n  spec:\n    rules:\n    - backendRef: []\n",
			`line 6: httpRoutes[0] (demo/r).spec.rules[0]: unknown field "backendRef"`},
		"no version":   {"httpRoutes: []\n", "version: required"},
		"bad weight":   {strings.Replace(route("r"), "weight: 90", "weight: -1", 1), "weight"},
		"missing file": {"", "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if tc.body != "" {
				writeFile(t, path, tc.body)
			}
			_, err := New(Config{Path: path})
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, path)
			_, err = Load(path)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := New(Config{})
	require.ErrorContains(t, err, "path required")
}

// TestSourceFollowsTheFile: a new good version is published (Changed
// closes), a bad one or a removed file keeps the last good routes and is
// reported once, an unchanged file publishes nothing.
func TestSourceFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, path, route("one"))
	h := &errorLog{}
	reg := prometheus.NewRegistry()
	s, err := New(Config{Path: path, Interval: 5 * time.Millisecond, Logger: slog.New(h), Registerer: reg})
	require.NoError(t, err)
	require.Len(t, s.Routes(), 1)
	require.Equal(t, "one", s.Routes()[0].Name)
	first := s.Changed()
	waitChecks := runSource(t, s)

	waitChecks(3) // an unchanged file publishes nothing
	select {
	case <-first:
		t.Fatal("Changed closed without a change")
	default:
	}

	writeFile(t, path, route("two"))
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("Changed not closed after the file changed")
	}
	require.Equal(t, "two", s.Routes()[0].Name)
	second := s.Changed()

	// A bad version: reported once however many checks pass; the last
	// good routes stay.
	writeFile(t, path, "version: 1\nhttpRoutes:\n- metadata: {namespace: demo, name: three}\n  spec: {rules: [{backendRef: []}]}\n")
	waitChecks(5)
	require.Len(t, h.lines(), 1)
	require.Contains(t, h.lines()[0], "routes file not reloaded; the last good routes keep serving")
	require.Contains(t, h.lines()[0], "path="+path)
	require.Contains(t, h.lines()[0], `line 4: httpRoutes[0] (demo/three).spec.rules[0]: unknown field "backendRef"`)
	require.Equal(t, "two", s.Routes()[0].Name)
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.rejected))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.reloads.WithLabelValues(resultRejected)))

	// A removed file is another bad version, reported once; the routes stay.
	require.NoError(t, os.Remove(path))
	waitChecks(5)
	require.Len(t, h.lines(), 2)
	require.Contains(t, h.lines()[1], "no such file")
	require.Len(t, s.Routes(), 1)
	select {
	case <-second:
		t.Fatal("Changed closed by a bad version")
	default:
	}

	// An empty but valid file is a good version: no routes.
	writeFile(t, path, "version: 1\n")
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("Changed not closed after the file became valid")
	}
	require.Empty(t, s.Routes())
	waitChecks(1)
	require.Equal(t, 0.0, testutil.ToFloat64(s.metrics.rejected))
	require.Equal(t, 3.0, testutil.ToFloat64(s.metrics.reloads.WithLabelValues(resultLoaded)))
	require.Equal(t, 0.0, testutil.ToFloat64(s.metrics.routes))
	n, err := testutil.GatherAndCount(reg, "causeway_routefile_reloads_total", "causeway_routefile_routes", "causeway_routefile_rejected")
	require.NoError(t, err)
	require.Equal(t, 4, n)
}

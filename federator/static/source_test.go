package static

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

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordHandler keeps the messages of the records logged at ERROR.
type recordHandler struct {
	mu     sync.Mutex
	errors []string // guarded by mu
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
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
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errors...)
}

// TestSourceReportsABadVersionOnce runs the source on a real file: an
// unchanged bad file is logged and counted once however many checks pass,
// a changed bad file once more, and the last good set stays published.
func TestSourceReportsABadVersionOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exports.yaml")
	write := func(body string) { require.NoError(t, os.WriteFile(path, []byte(body), 0o644)) }
	write("version: 1\nservices:\n- {namespace: demo, name: echo, ports: [{port: 8080}]}\n")

	h := &recordHandler{}
	var checks, rejected, published atomic.Int64
	src := &Source{Path: path, Cluster: "east", Interval: 5 * time.Millisecond, Logger: slog.New(h),
		afterCheck: func() { checks.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(context.Context, []*causewayv1.ExportRecord) error {
			published.Add(1)
			return nil
		}, func(error) { rejected.Add(1) })
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return published.Load() == 1 }, 10*time.Second, time.Millisecond)

	// waitChecks waits until n more checks have run.
	waitChecks := func(n int64) {
		t.Helper()
		target := checks.Load() + n
		require.Eventually(t, func() bool { return checks.Load() >= target }, 10*time.Second, time.Millisecond)
	}

	write("version: 1\nservices:\n- {namespace: demo, name: echo, ports: [{port: eighty}]}\n")
	require.Eventually(t, func() bool { return rejected.Load() == 1 }, 10*time.Second, time.Millisecond)
	waitChecks(20)
	require.Equal(t, int64(1), rejected.Load(), "an unchanged bad file was counted again")
	lines := h.lines()
	require.Len(t, lines, 1, "an unchanged bad file was logged again: %q", lines)
	require.Contains(t, lines[0], `services[0] (demo/echo).ports[0].port: want a port number 1-65535, got "eighty"`)

	write("version: 1\nservices:\n- {namespace: demo, name: echo, ports: [{port: 70000}]}\n")
	require.Eventually(t, func() bool { return rejected.Load() == 2 }, 10*time.Second, time.Millisecond)
	waitChecks(20)
	require.Equal(t, int64(2), rejected.Load())
	require.Len(t, h.lines(), 2)
	require.Equal(t, int64(1), published.Load(), "a bad file replaced the last good set")

	// A deleted file is reported once too, and nothing is withdrawn.
	require.NoError(t, os.Remove(path))
	require.Eventually(t, func() bool { return rejected.Load() == 3 }, 10*time.Second, time.Millisecond)
	waitChecks(20)
	require.Equal(t, int64(3), rejected.Load())
	assert.Contains(t, h.lines()[2], "no such file or directory")

	// Good again, then the first bad version again: that is news.
	write("version: 1\nservices:\n- {namespace: demo, name: echo, ports: [{port: 8081}]}\n")
	require.Eventually(t, func() bool { return published.Load() == 2 }, 10*time.Second, time.Millisecond)
	write("version: 1\nservices:\n- {namespace: demo, name: echo, ports: [{port: eighty}]}\n")
	require.Eventually(t, func() bool { return rejected.Load() == 4 }, 10*time.Second, time.Millisecond)
	require.Len(t, h.lines(), 4)
}

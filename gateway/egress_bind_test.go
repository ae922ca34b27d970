package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEgressBindFailureFailsOnlyThatListener: west imports its own export
// on two clusterset IPs, one of which (192.0.2.1, on no interface) cannot
// be bound. West's gateway keeps running: its other egress listener
// carries flows, its ingress serves east's flows, and the failure is
// counted, shown as a failed listener and retried with back-off.
// Over 80 lines: one scenario whose steps share its servers.
func TestEgressBindFailureFailsOnlyThatListener(t *testing.T) {
	if ln, err := net.Listen("tcp", "192.0.2.1:0"); err == nil {
		_ = ln.Close()
		t.Skip("192.0.2.1 is a local address here; the bind cannot fail")
	}
	var logs syncBuffer
	f := newFixture(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	west := f.clusters["west"]
	entries := maps.Clone(f.entries)
	entries["imports/west/demo/echo"] = &causewayv1.Entry{Key: "imports/west/demo/echo", Record: &causewayv1.Entry_Import{
		Import: &causewayv1.ImportRecord{Namespace: "demo", Name: "echo", Cluster: "west",
			Type:  causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
			Ips:   []string{"192.0.2.1", "127.0.0.2"}, Clusters: []string{"west"}}}}
	f.feed.Publish(catalog.NewView(entries, 2))

	m := west.gw.metrics
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1.0, testutil.ToFloat64(m.listeners.WithLabelValues("failed")))
		assert.Equal(c, 1.0, testutil.ToFloat64(m.listeners.WithLabelValues("open")))
	}, 10*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, testutil.ToFloat64(m.listenErrors.WithLabelValues(listenErrAddrNotAvail)), 1.0)

	echo := func(addr string) (string, error) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return "", err
		}
		if _, err := io.WriteString(c, "ping"); err != nil {
			return "", err
		}
		_ = c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		return string(b), err
	}
	// West's other listener serves.
	var westVIP string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		f.mu.Lock()
		defer f.mu.Unlock()
		ln, ok := f.listeners["127.0.0.2:8080"]
		if assert.True(c, ok) {
			westVIP = ln.Addr().String()
		}
	}, 10*time.Second, 10*time.Millisecond)
	got, err := echo(westVIP)
	require.NoError(t, err)
	require.Equal(t, "ping", got)
	// West's ingress serves east's flows.
	got, err = echo(f.vip("127.0.0.1:8080"))
	require.NoError(t, err)
	require.Equal(t, "ping", got)
	select {
	case <-west.done:
		t.Fatal("west's gateway stopped")
	default:
	}
	// Retried with back-off (first retry after listenRetryBase).
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(m.listenErrors.WithLabelValues(listenErrAddrNotAvail)) >= 2
	}, 10*time.Second, 20*time.Millisecond)
	// One ERROR line for the address, the retries at DEBUG.
	var errorLines, debugLines int
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "addr=192.0.2.1:8080") || !strings.Contains(line, "egress listener failed") {
			continue
		}
		switch {
		case strings.Contains(line, "level=ERROR"):
			errorLines++
			require.Contains(t, line, "cannot assign requested address")
			require.Contains(t, line, "service=demo/echo")
		case strings.Contains(line, "level=DEBUG"):
			debugLines++
		}
	}
	require.Equal(t, 1, errorLines, logs.String())
	require.GreaterOrEqual(t, debugLines, 1)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestListenRetryAfter(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		require.Equal(t, want, listenRetryAfter(n), "failure %d", n)
	}
}

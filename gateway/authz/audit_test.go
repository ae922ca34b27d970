package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJSONLinesSink(t *testing.T) {
	var buf bytes.Buffer
	s := NewJSONLinesSink(&buf, 0)
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Record(NewAuditRecord(now, cart, 9090, frontend, get("/items/1"),
		Decision{Allowed: true, Reason: ReasonAllowedByPolicy, Policy: "shop/p"}))
	s.Record(NewAuditRecord(now, cart, 8080, northAny, nil, Decision{Reason: ReasonDefaultDeny, Rule: -1}))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	s.Record(AuditRecord{})
	require.Equal(t, uint64(1), s.Dropped(), "records after Close are dropped")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	require.JSONEq(t, `{"time":"2027-01-02T03:04:05Z","principal":"spiffe://north.clusterset.local/ns/web/sa/frontend",
		"sourceCluster":"north","service":"shop/cart","port":9090,"method":"GET","path":"/items/1",
		"allowed":true,"reason":"AllowedByPolicy","policy":"shop/p"}`, lines[0])
	var r AuditRecord
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &r))
	require.Equal(t, "spiffe://north.clusterset.local/anonymous", r.Principal)
	require.False(t, r.Allowed)
	require.Empty(t, r.Method)
}

// blockedWriter blocks every Write until released.
type blockedWriter struct {
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	w.n += bytes.Count(p, []byte("\n"))
	w.mu.Unlock()
	return len(p), nil
}

func TestJSONLinesSinkNeverBlocks(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	s := NewJSONLinesSink(w, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			s.Record(AuditRecord{Reason: ReasonDeniedByPolicy})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a stuck writer")
	}
	// The writer is stuck, so most records are dropped; every record is
	// either written or counted.
	require.Positive(t, s.Dropped())
	close(w.release)
	require.NoError(t, s.Close())
	require.Equal(t, 1000-int(s.Dropped()), w.n)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestJSONLinesSinkWriteError(t *testing.T) {
	s := NewJSONLinesSink(failingWriter{}, 1)
	s.Record(AuditRecord{})
	err := s.Close()
	require.True(t, errors.Is(err, io.ErrClosedPipe), "%v", err)
}

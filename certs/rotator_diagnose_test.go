package certs_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(ln, "level="+level) {
			out = append(out, ln)
		}
	}
	return out
}

// TestNewRotatorLogsPermanentErrorsWithBackoff: a failure Diagnose calls
// permanent is logged at ERROR with its hint, once and then with back-off
// (not at every retry); the rotator keeps retrying and succeeds once the
// cause is gone.
func TestNewRotatorLogsPermanentErrorsWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer, _ := newScriptedSigner(t, time.Hour)
		signer.fail = 60 // ~60 retries of 5-10ms: well within the log back-off's first 2s
		var logs lockedBuf
		r, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID, Signer: signer,
			Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
			RetryMin: 10 * time.Millisecond, RetryMax: 10 * time.Millisecond,
			Diagnose: func(error) string { return "tokenFile must hold a join token issued for component gateway" },
		})
		require.NoError(t, err)
		require.NotNil(t, r)
		require.Len(t, signer.callTimes(), 61)
		errs := logs.lines("ERROR")
		require.Len(t, errs, 1, "60 failures, one ERROR line")
		require.Contains(t, errs[0], `hint="tokenFile must hold a join token issued for component gateway"`)
		require.Contains(t, errs[0], "signer down")
		require.Empty(t, logs.lines("WARN"))
	})
	// Without a hint the failure is transient: WARN, with the same back-off.
	synctest.Test(t, func(t *testing.T) {
		signer, _ := newScriptedSigner(t, time.Hour)
		signer.fail = 600 // 5-10ms each: 3-6s, so 2 or 3 lines (at 0, 2s, 6s)
		var logs lockedBuf
		_, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: gatewayID, Signer: signer,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)), RetryMin: 10 * time.Millisecond, RetryMax: 10 * time.Millisecond})
		require.NoError(t, err)
		warns := logs.lines("WARN")
		require.GreaterOrEqual(t, len(warns), 2)
		require.LessOrEqual(t, len(warns), 3)
		require.Empty(t, logs.lines("ERROR"))
	})
}

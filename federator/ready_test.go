package federator

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadyMessageHasNoPackagePrefix: /readyz prints "<check>: <error>",
// so the error must not repeat "federator: ".
func TestReadyMessageHasNoPackagePrefix(t *testing.T) {
	f := &Federator{synced: make(chan struct{})}
	err := f.Ready()
	require.ErrorIs(t, err, ErrNotSynced)
	require.Equal(t, "catalog not synced with etcd", err.Error())
}

package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlowTracker(t *testing.T) {
	var tr flowTracker
	select {
	case <-tr.idleCh():
	default:
		t.Fatal("an empty tracker is idle")
	}
	closed := 0
	id1, ok := tr.add(closerFunc(func() error { closed++; return nil }))
	require.True(t, ok)
	id2, ok := tr.add(closerFunc(func() error { closed++; return nil }))
	require.True(t, ok)
	idle := tr.idleCh()
	tr.done(id1)
	select {
	case <-idle:
		t.Fatal("idle with a flow open")
	default:
	}
	tr.closeAll()
	require.Equal(t, 1, closed, "closeAll ends the open flow only")
	_, ok = tr.add(closerFunc(func() error { return nil }))
	require.False(t, ok, "no flow admitted after closeAll")
	tr.done(id2)
	<-idle
}

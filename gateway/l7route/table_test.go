package l7route

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTableKeepsLastGood(t *testing.T) {
	tbl := NewTable(&seqRand{seq: []int64{0}})
	v1 := httpRoute("split", Rule{Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}})
	other := httpRoute("other", to(cart, prefix("/other")))
	st := tbl.Update([]*Route{v1, other}, catalog)
	require.NoError(t, Errors(st))

	// v2 names an unknown backend: v1 keeps serving, v2 is reported.
	v2 := httpRoute("split", Rule{Backends: []Backend{{Service: ServiceKey{Namespace: "shop", Name: "typo"}, Port: 8080, Weight: 1}}})
	st = tbl.Update([]*Route{v2, other}, catalog)
	require.Error(t, st[0].Err)
	require.True(t, st[0].Stale)
	require.NoError(t, st[1].Err)
	sel, err := tbl.Snapshot().Select(cart, 8080, get("/"))
	require.NoError(t, err)
	require.Same(t, v1, sel.Route)
	cs := st[0].Conditions()
	require.Equal(t, "BackendNotFound", cs[0].Reason)
	require.Contains(t, cs[0].Message, "keeps serving")

	// A new route that was never valid serves nothing.
	bad := httpRoute("new", Rule{Matches: []Match{exact("/new")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 0}}})
	st = tbl.Update([]*Route{v2, other, bad}, catalog)
	require.Error(t, st[2].Err)
	require.False(t, st[2].Stale)
	sel, err = tbl.Snapshot().Select(cart, 8080, get("/new"))
	require.NoError(t, err)
	require.Same(t, v1, sel.Route)

	// Once the backend exists, v2 replaces v1.
	withTypo := func(k ServiceKey) (ServiceInfo, bool) {
		if k.Name == "typo" {
			return ServiceInfo{Ports: []int32{8080}, Clusters: []string{"east"}}, true
		}
		return catalog(k)
	}
	st = tbl.Update([]*Route{v2, other}, withTypo)
	require.NoError(t, Errors(st))
	sel, err = tbl.Snapshot().Select(cart, 8080, get("/"))
	require.NoError(t, err)
	require.Same(t, v2, sel.Route)

	// A route left out is removed, even with a good version.
	require.NoError(t, Errors(tbl.Update([]*Route{other}, withTypo)))
	_, err = tbl.Snapshot().Select(cart, 8080, get("/"))
	require.ErrorIs(t, err, ErrNoRoute)

	require.NoError(t, Errors(tbl.Update(nil, catalog)))
	require.False(t, tbl.Snapshot().Attached(cart, 8080))
}

func TestTableDuplicateKey(t *testing.T) {
	tbl := NewTable(nil)
	a := httpRoute("dup", to(cart, prefix("/a")))
	b := httpRoute("dup", to(cart, prefix("/b")))
	st := tbl.Update([]*Route{a, b}, catalog)
	require.NoError(t, st[0].Err)
	require.ErrorContains(t, st[1].Err, "listed twice")
	require.ErrorContains(t, Errors(st), "HTTPRoute shop/dup")
	sel, err := tbl.Snapshot().Select(cart, 8080, get("/a"))
	require.NoError(t, err)
	require.Same(t, a, sel.Route)
}

func TestTableConcurrentReaders(t *testing.T) {
	tbl := NewTable(nil)
	routes := []*Route{httpRoute("r", Rule{Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}, {Cluster: "west", Weight: 1}}})}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				sel, err := tbl.Snapshot().Select(cart, 8080, get("/x"))
				if err == nil && sel.Target.Service != cart {
					t.Errorf("target %v", sel.Target)
				}
			}
		})
	}
	for range 200 {
		tbl.Update(routes, catalog)
		tbl.Update(nil, catalog)
	}
	close(done)
	wg.Wait()
}

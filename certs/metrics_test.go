package certs

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestRegisterExpiry(t *testing.T) {
	ca, err := NewCA("east.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	leaf, err := ca.NewLeafKeyPair("gateway", 30*time.Minute, time.Now())
	require.NoError(t, err)
	src := NewStaticSource(leaf)
	reg := prometheus.NewRegistry()
	require.NoError(t, RegisterExpiry(reg, "gateway", src))
	require.NoError(t, RegisterExpiry(reg, "dnsshim", NewStaticSource(nil)))
	require.Error(t, RegisterExpiry(reg, "gateway", src), "a second gauge for the same component")

	values := func() map[string]float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		out := map[string]float64{}
		for _, mf := range mfs {
			require.Equal(t, ExpiryMetric, mf.GetName())
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	got := values()
	require.Equal(t, 0.0, got["dnsshim"])
	require.InDelta(t, float64(time.Now().Add(30*time.Minute).Unix()), got["gateway"], 120)

	// A renewed certificate is read at the next scrape.
	next, err := ca.NewLeafKeyPair("gateway", 50*time.Minute, time.Now())
	require.NoError(t, err)
	src.Set(next)
	require.InDelta(t, float64(time.Now().Add(50*time.Minute).Unix()), values()["gateway"], 120)
}

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/app/devenv"
)

var (
	envOnce  sync.Once
	envState *devenv.State
	envErr   error
)

// clusterset starts one in-process dev clusterset (a, b) for all benchmarks
// of the run; it lives until the process exits.
func clusterset(b *testing.B) *devenv.State {
	envOnce.Do(func() {
		ready := make(chan *devenv.State, 1)
		errc := make(chan error, 1)
		cfg := devenv.Config{
			Clusters: []devenv.ClusterSpec{{Name: "a", Region: "r1", Zone: "r1a"}, {Name: "b", Region: "r2", Zone: "r2a"}},
			Net:      netip.MustParsePrefix("127.90.0.0/16"),
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		go func() { errc <- devenv.Run(context.Background(), cfg, func(s *devenv.State) { ready <- s }) }()
		select {
		case envState = <-ready:
		case envErr = <-errc:
		case <-time.After(60 * time.Second):
			envErr = fmt.Errorf("dev clusterset not ready after 60s")
		}
	})
	if envErr != nil {
		b.Fatalf("start clusterset: %v", envErr)
	}
	return envState
}

// targets returns the tunnel URL (cluster a's VIP of clock, served by b)
// and the direct URL of b's clock backend.
func targets(b *testing.B) (tunnel, direct string) {
	st := clusterset(b)
	for _, s := range st.Services {
		if s.Name == "clock" {
			direct = "http://" + s.Backends["b"] + "/"
		}
	}
	tunnel = fmt.Sprintf("http://%s:8080/", st.Clusters[0].VIPs["demo/clock"])
	return tunnel, direct
}

// BenchmarkHTTP measures requests through the tunnel (cluster a → QUIC →
// cluster b → backend) against the same backend called directly, with
// keep-alive connections and with a new TCP connection per request.
func BenchmarkHTTP(b *testing.B) {
	tunnelURL, directURL := targets(b)
	for _, mode := range []string{"keepalive", "newconn"} {
		for _, path := range []struct{ name, url string }{{"direct", directURL}, {"tunnel", tunnelURL}} {
			b.Run(mode+"/"+path.name, func(b *testing.B) {
				tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableKeepAlives: mode == "newconn"}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				b.SetParallelism(8)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := client.Get(path.url)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			})
		}
	}
}

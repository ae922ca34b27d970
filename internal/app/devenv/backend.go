package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"
)

// demoService is a service the dev clusterset exports.
type demoService struct {
	Namespace, Name string
	// Port is served at L4 (a TCP flow per connection), HTTPPort at L7
	// (appProtocol http: each request balanced and routed on its own);
	// both reach the same backend listener.
	Port, HTTPPort int
	// ExportedBy lists cluster indexes (0-based); -1 means every cluster.
	ExportedBy []int
}

// demoPort is one port of a demo service.
type demoPort struct {
	Name        string
	Port        int
	AppProtocol string
}

// ports are the service's ports: "tcp" (L4), then "http" (L7).
func (s demoService) ports() []demoPort {
	return []demoPort{{Name: "tcp", Port: s.Port}, {Name: "http", Port: s.HTTPPort, AppProtocol: "http"}}
}

// demoServices returns echo (first two clusters) and clock (the third, or
// the last when there are fewer).
func demoServices(n int) []demoService {
	echo := []int{0}
	if n > 1 {
		echo = append(echo, 1)
	}
	return []demoService{
		{Namespace: "demo", Name: "echo", Port: 8080, HTTPPort: 8081, ExportedBy: echo},
		{Namespace: "demo", Name: "clock", Port: 8080, HTTPPort: 8081, ExportedBy: []int{min(2, n-1)}},
	}
}

// backendHandler answers every request with JSON naming cluster and service.
func backendHandler(cluster string, svc demoService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{
			"cluster":   cluster,
			"service":   svc.Name,
			"namespace": svc.Namespace,
			"method":    r.Method,
			"path":      r.URL.Path,
			"client":    r.RemoteAddr,
		}
		if svc.Name == "clock" {
			body["time"] = time.Now().UTC().Format(time.RFC3339Nano)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// serveBackend serves h on ln until ctx ends.
func serveBackend(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

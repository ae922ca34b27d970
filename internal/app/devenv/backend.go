package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// demoService is a service the dev clusterset exports.
type demoService struct {
	Namespace, Name string
	// Port is served at L4 (a TCP flow per connection), HTTPPort at L7
	// (appProtocol http: each request balanced and routed on its own),
	// GRPCPort at L7 for gRPC over h2c (appProtocol grpc); all reach the
	// same backend listener.
	Port, HTTPPort, GRPCPort int
	// ExportedBy lists cluster indexes (0-based); -1 means every cluster.
	ExportedBy []int
}

// demoPort is one port of a demo service.
type demoPort struct {
	Name        string
	Port        int
	AppProtocol string
}

// ports are the service's ports: "tcp" (L4), then "http" and "grpc" (L7).
func (s demoService) ports() []demoPort {
	return []demoPort{{Name: "tcp", Port: s.Port}, {Name: "http", Port: s.HTTPPort, AppProtocol: "http"},
		{Name: "grpc", Port: s.GRPCPort, AppProtocol: "grpc"}}
}

// demoServices returns echo (first two clusters) and clock (the third, or
// the last when there are fewer).
func demoServices(n int) []demoService {
	echo := []int{0}
	if n > 1 {
		echo = append(echo, 1)
	}
	return []demoService{
		{Namespace: "demo", Name: "echo", Port: 8080, HTTPPort: 8081, GRPCPort: 50051, ExportedBy: echo},
		{Namespace: "demo", Name: "clock", Port: 8080, HTTPPort: 8081, GRPCPort: 50051, ExportedBy: []int{min(2, n-1)}},
	}
}

// backendHandler answers every HTTP request with JSON naming cluster and
// service, and gRPC calls (HTTP/2) with the gRPC health service, naming
// the cluster in the response header metadata "x-cluster".
func backendHandler(cluster string, svc demoService) http.Handler {
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-cluster", cluster, "x-service", svc.Name))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
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
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true) // gRPC, and h2c clients
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, Protocols: &protos}
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

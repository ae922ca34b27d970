package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Client calls one federator's admin API. Every call is bounded by the
// target's timeout and returns errors of one line naming the address.
type Client struct {
	rpc     causewayv1.AdminClient
	conn    *grpc.ClientConn
	addr    string
	timeout time.Duration
}

// Dial loads t's credentials and prepares a connection to t.Addr; nothing
// is sent until the first call.
func Dial(t Target) (*Client, error) {
	cfg, err := clientTLS(t)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(t.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("federator API %s: %w", t.Addr, err)
	}
	return &Client{rpc: causewayv1.NewAdminClient(conn), conn: conn, addr: t.Addr, timeout: t.Timeout}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// call runs fn with the client's deadline and turns its error into one line.
func call[Resp any](ctx context.Context, c *Client, fn func(context.Context) (Resp, error)) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := fn(ctx)
	if err != nil {
		return resp, c.explain(err)
	}
	return resp, nil
}

// explain turns a call's error into one line that names the address when
// the problem is reaching the API.
func (c *Client) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("federator API %s unreachable: no answer within %s", c.addr, c.timeout)
		}
		return fmt.Errorf("federator API %s: %s", c.addr, oneLine(err.Error()))
	}
	msg := oneLine(st.Message())
	switch st.Code() {
	case codes.Unavailable:
		if strings.HasPrefix(msg, "etcd:") { // the federator answered; its etcd did not
			return fmt.Errorf("federator API %s: %s", c.addr, msg)
		}
		msg = transportCause(msg)
		if strings.Contains(msg, "handshake") || strings.Contains(msg, "tls:") {
			return fmt.Errorf("federator API %s: TLS handshake failed: %s", c.addr, notTLSHint(c.addr, msg))
		}
		return fmt.Errorf("federator API %s unreachable: %s", c.addr, msg)
	case codes.DeadlineExceeded:
		return fmt.Errorf("federator API %s unreachable: no answer within %s", c.addr, c.timeout)
	case codes.Canceled:
		return fmt.Errorf("federator API %s: canceled", c.addr)
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("federator API %s refused the call: %s", c.addr, msg)
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		return errors.New(msg)
	}
	return fmt.Errorf("federator API %s: %s: %s", c.addr, st.Code(), msg)
}

// transportCause strips gRPC's wrapping from a connection error:
// `connection error: desc = "transport: Error while dialing: dial tcp ...: connect: connection refused"`
// becomes `dial tcp ...: connect: connection refused`.
func transportCause(msg string) string {
	if _, desc, ok := strings.Cut(msg, `desc = "`); ok {
		msg = strings.TrimSuffix(desc, `"`)
	}
	for _, p := range []string{"transport: ", "Error while dialing: ", "error while dialing: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ParseService splits "namespace/name"; empty gives two empty strings.
func ParseService(s string) (ns, name string, err error) {
	if s == "" {
		return "", "", nil
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok || !names.IsDNSLabel(ns) || !names.IsDNSLabel(name) {
		return "", "", fmt.Errorf("--service %q: want NAMESPACE/NAME, both DNS labels", s)
	}
	return ns, name, nil
}

// Clusters lists the member clusters.
func (c *Client) Clusters(ctx context.Context) (*ClusterList, error) {
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.ListClustersResponse, error) {
		return c.rpc.ListClusters(ctx, &causewayv1.ListClustersRequest{})
	})
	if err != nil {
		return nil, err
	}
	return newClusterList(resp), nil
}

// Exports lists the exported services, of namespace ns when set.
func (c *Client) Exports(ctx context.Context, ns string) (*ExportList, error) {
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.ListExportsResponse, error) {
		return c.rpc.ListExports(ctx, &causewayv1.ListExportsRequest{Namespace: ns})
	})
	if err != nil {
		return nil, err
	}
	return newExportList(resp), nil
}

// Imports lists a cluster's imports (the federator's own when empty).
func (c *Client) Imports(ctx context.Context, cluster string) (*ImportList, error) {
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.ListImportsResponse, error) {
		return c.rpc.ListImports(ctx, &causewayv1.ListImportsRequest{Cluster: cluster})
	})
	if err != nil {
		return nil, err
	}
	return newImportList(resp), nil
}

// Status describes the federator.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.StatusResponse, error) {
		return c.rpc.Status(ctx, &causewayv1.StatusRequest{})
	})
	if err != nil {
		return nil, err
	}
	return newStatus(c.addr, resp), nil
}

// Drain drains a cluster, or the service "ns/name" of it.
func (c *Client) Drain(ctx context.Context, cluster, service, reason string) (*DrainResult, error) {
	ns, name, err := ParseService(service)
	if err != nil {
		return nil, err
	}
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.DrainResponse, error) {
		return c.rpc.Drain(ctx, &causewayv1.DrainRequest{Cluster: cluster, Namespace: ns, Name: name, Reason: reason})
	})
	if err != nil {
		return nil, err
	}
	d := resp.GetDrain()
	return &DrainResult{Cluster: cluster, Service: service, Drained: true, Changed: resp.GetChanged(),
		Reason: d.GetReason(), Since: timeOrNil(d.GetSince())}, nil
}

// Undrain undrains a cluster, or the service "ns/name" of it.
func (c *Client) Undrain(ctx context.Context, cluster, service string) (*DrainResult, error) {
	ns, name, err := ParseService(service)
	if err != nil {
		return nil, err
	}
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.UndrainResponse, error) {
		return c.rpc.Undrain(ctx, &causewayv1.UndrainRequest{Cluster: cluster, Namespace: ns, Name: name})
	})
	if err != nil {
		return nil, err
	}
	res := &DrainResult{Cluster: cluster, Service: service, Drained: false, Changed: resp.GetChanged()}
	if !res.Changed && service == "" {
		// Nothing drained the whole cluster: say which services are drained,
		// a whole-cluster undrain does not touch them.
		if l, err := c.Clusters(ctx); err == nil {
			for _, cl := range l.Clusters {
				if cl.Name == cluster {
					res.DrainedServices = cl.DrainedServices
				}
			}
		}
	}
	return res, nil
}

// RemoveCluster removes a cluster from the federation.
func (c *Client) RemoveCluster(ctx context.Context, name string, force bool) (*RemoveResult, error) {
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.RemoveClusterResponse, error) {
		return c.rpc.RemoveCluster(ctx, &causewayv1.RemoveClusterRequest{Name: name, Force: force})
	})
	if err != nil {
		return nil, err
	}
	return newRemoveResult(resp), nil
}

// TrustCluster makes the answering federator trust a peer's trust bundle
// (fingerprint "": as published now).
func (c *Client) TrustCluster(ctx context.Context, name, fingerprint string) (*TrustResult, error) {
	resp, err := call(ctx, c, func(ctx context.Context) (*causewayv1.TrustClusterResponse, error) {
		return c.rpc.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: name, Fingerprint: fingerprint})
	})
	if err != nil {
		return nil, err
	}
	return &TrustResult{Cluster: resp.GetCluster(), Sequence: resp.GetSequence(),
		Fingerprints: nonNil(resp.GetFingerprints()), Changed: resp.GetChanged()}, nil
}

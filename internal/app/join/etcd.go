package join

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/internal/app/component"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrEtcdUnreachable is returned when the federation etcd does not answer
// within EtcdOptions.DialTimeout.
var ErrEtcdUnreachable = errors.New("unreachable")

// etcdConn is the federation etcd client of one join: every request it
// makes is bounded by timeout, and its errors name the endpoints.
type etcdConn struct {
	cli       *clientv3.Client
	endpoints string
	timeout   time.Duration
}

// dialEtcd connects to the federation etcd with e's credentials. The etcd
// client connects lazily and its requests carry no deadline of their own,
// so an endpoint that refuses connections is reported here, at once, and
// every later request is bounded by e.DialTimeout.
func dialEtcd(ctx context.Context, e EtcdOptions) (*etcdConn, error) {
	c := &etcdConn{endpoints: strings.Join(e.Endpoints, ","), timeout: e.DialTimeout}
	if err := probeEndpoints(ctx, e.Endpoints, e.DialTimeout); err != nil {
		return nil, fmt.Errorf("join: etcd %s %w: %w", c.endpoints, ErrEtcdUnreachable, err)
	}
	cli, err := component.NewEtcdClient(component.EtcdConfig{
		Endpoints: e.Endpoints, CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile, ServerName: e.ServerName,
		Username: e.Username, PasswordFile: e.PasswordFile, DialTimeout: metav1.Duration{Duration: e.DialTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	c.cli = cli
	return c, nil
}

// Close closes the client.
func (c *etcdConn) Close() error { return c.cli.Close() }

// do runs one etcd request (what names it for errors) within the timeout.
func (c *etcdConn) do(ctx context.Context, what string, fn func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := fn(rctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil: // the caller gave up (Ctrl-C)
		return fmt.Errorf("join: %s: %w", what, ctx.Err())
	case rctx.Err() != nil:
		return fmt.Errorf("join: %s: etcd %s %w: no answer within %s", what, c.endpoints, ErrEtcdUnreachable, c.timeout)
	}
	return fmt.Errorf("join: %s: etcd %s: %s", what, c.endpoints, strings.Join(strings.Fields(err.Error()), " "))
}

// probeEndpoints opens (and closes) a TCP connection to every endpoint at
// once; it returns nil as soon as one accepts, else the first endpoint's
// error once all failed or timeout passed. An endpoint that is not a URL
// or host:port is left to the etcd client to judge.
func probeEndpoints(ctx context.Context, endpoints []string, timeout time.Duration) error {
	addrs := make([]string, 0, len(endpoints))
	for _, ep := range endpoints {
		addr, ok := endpointAddr(ep)
		if !ok {
			return nil
		}
		addrs = append(addrs, addr)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel() // ends the dials still running
	errs := make(chan error, len(addrs))
	for _, addr := range addrs {
		go func() {
			conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
			if err == nil {
				_ = conn.Close()
			}
			errs <- err
		}()
	}
	var first error
	for range addrs {
		err := <-errs
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case dctx.Err() != nil, errors.Is(first, os.ErrDeadlineExceeded):
		// The dial's own deadline can fire just before the context's.
		return fmt.Errorf("no answer within %s", timeout)
	}
	if inner := errors.Unwrap(first); inner != nil {
		return inner // drop "dial tcp <addr>:": the caller names the endpoints
	}
	return first
}

// endpointAddr is the host:port of an etcd endpoint ("http://h:p",
// "https://h:p" or "h:p").
func endpointAddr(ep string) (string, bool) {
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
			return "", false
		}
		return u.Host, true
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		return "", false
	}
	return ep, true
}

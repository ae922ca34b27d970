package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/testenv/certtest"
	"github.com/stretchr/testify/require"
)

const (
	eastTD = "east.clusterset.local"
	westTD = "west.clusterset.local"
	alpn   = "causeway/1"
)

// fixture is a two-cluster clusterset (east, west) plus an outsider (north)
// whose trust domain is not in the bundles.
type fixture struct {
	now               time.Time
	east, west, north *certs.CA
	bundles           *certs.BundleSet
	eastGW, westGW    *tls.Certificate
	northGW, eastCtl  *tls.Certificate
	eastID, westID    certs.ID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: time.Now()}
	var err error
	// CAs start in the past so that leaves can be issued "in the past" too.
	caStart := f.now.Add(-48 * time.Hour)
	f.east, err = certs.NewCA(eastTD, 30*24*time.Hour, caStart)
	require.NoError(t, err)
	f.west, err = certs.NewCA(westTD, 30*24*time.Hour, caStart)
	require.NoError(t, err)
	f.north, err = certs.NewCA("north.clusterset.local", 30*24*time.Hour, caStart)
	require.NoError(t, err)

	f.bundles = certs.NewBundleSet()
	f.bundles.Set(eastTD, []*x509.Certificate{f.east.Cert})
	f.bundles.Set(westTD, []*x509.Certificate{f.west.Cert})

	f.eastGW = f.leaf(t, f.east, "gateway")
	f.westGW = f.leaf(t, f.west, "gateway")
	f.northGW = f.leaf(t, f.north, "gateway")
	f.eastCtl = f.leaf(t, f.east, "controller")
	f.eastID = certs.ID{TrustDomain: eastTD, Path: "/gateway"}
	f.westID = certs.ID{TrustDomain: westTD, Path: "/gateway"}
	return f
}

func (f *fixture) leaf(t *testing.T, ca *certs.CA, component string) *tls.Certificate {
	t.Helper()
	c, err := ca.NewLeafKeyPair(component, time.Hour, f.now)
	require.NoError(t, err)
	return c
}

// serverOpts returns options for the west gateway server.
func (f *fixture) serverOpts() certs.TLSOptions {
	return certs.TLSOptions{
		Source:     certs.NewStaticSource(f.westGW),
		Bundles:    f.bundles,
		Authorize:  certs.AuthorizeTrustDomain(eastTD),
		NextProtos: []string{alpn},
	}
}

// clientOpts returns options for the east gateway client.
func (f *fixture) clientOpts() certs.TLSOptions {
	return certs.TLSOptions{
		Source:     certs.NewStaticSource(f.eastGW),
		Bundles:    f.bundles,
		Authorize:  certs.AuthorizeID(f.westID),
		NextProtos: []string{alpn},
	}
}

// manualCert signs a certificate for a fresh P-256 key (certtest.Manual).
func manualCert(t *testing.T, tmpl *x509.Certificate, uri string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	return certtest.Manual(t, tmpl, uri, parent, parentKey)
}

// leafTemplate is a leaf template like the ones CA.IssueLeaf produces.
func leafTemplate() *x509.Certificate { return certtest.LeafTemplate() }

type handshakeResult struct {
	client, server       tls.ConnectionState
	clientErr, serverErr error
}

// handshake runs a TLS handshake between client and server configurations
// over a loopback TCP connection. After a successful server handshake the
// server writes a byte that the client reads, so a rejection of the client's
// certificate (which TLS 1.3 reports after the client's handshake returns)
// surfaces as clientErr too.
func handshake(t *testing.T, clientCfg, serverCfg *tls.Config) handshakeResult {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	var r handshakeResult
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		conn, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			return
		}
		defer conn.Close()
		if err := conn.SetDeadline(deadline); err != nil {
			r.serverErr = err
			return
		}
		srv := tls.Server(conn, serverCfg)
		err = srv.HandshakeContext(ctx)
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		r.server = srv.ConnectionState()
		r.serverErr = err
	}()

	func() {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			r.clientErr = err
			return
		}
		defer conn.Close()
		if err := conn.SetDeadline(deadline); err != nil {
			r.clientErr = err
			return
		}
		cl := tls.Client(conn, clientCfg)
		err = cl.HandshakeContext(ctx)
		if err == nil {
			_, err = io.ReadFull(cl, make([]byte, 1))
		}
		r.client = cl.ConnectionState()
		r.clientErr = err
	}()
	<-serverDone
	return r
}

package federator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// GatewayComponent is the SPIFFE ID path of gateways; only this cluster's
// gateway identity may announce a gateway instance.
const GatewayComponent = "gateway"

// GatewayLeaseTTL is the lease of an announced gateway record: a gateway
// whose host vanishes without closing its connection to the federator is
// dropped from the catalog within it.
const GatewayLeaseTTL = 5 * time.Second

// CatalogServer serves Catalog.Watch from the federator's mirror.
type CatalogServer struct {
	causewayv1.UnimplementedCatalogServer
	f *Federator
}

// CatalogServer returns the gRPC service of f's catalog.
func (f *Federator) CatalogServer() *CatalogServer { return &CatalogServer{f: f} }

var _ causewayv1.CatalogServer = (*CatalogServer)(nil)

// Watch streams a snapshot (or, for a client resuming from a revision the
// federator still remembers, a delta from it), then every change as a
// delta, until the client goes away. Changes that arrive while a send is in progress are
// coalesced into the next delta.
func (s *CatalogServer) Watch(req *causewayv1.WatchRequest, stream grpc.ServerStreamingServer[causewayv1.WatchResponse]) error {
	ctx := stream.Context()
	f := s.f
	f.metrics.watchers.Inc()
	defer f.metrics.watchers.Dec()
	// This cluster's exports in the catalog come from the export source,
	// never from etcd: wait for a view built with the source's first set.
	for _, ready := range []<-chan struct{}{f.synced, f.servingOwn} {
		select {
		case <-ctx.Done():
			return nil
		case <-ready:
		}
	}
	var sent map[string]*causewayv1.Entry
	resumed := false
	if rev := req.GetSinceRevision(); rev > 0 {
		if v, ok := f.viewAt(rev); ok {
			sent, resumed = v.Entries(), true
			f.metrics.watchResumes.Inc()
		}
	}
	for {
		changed := f.feed.Changed()
		v := f.feed.View()
		cur := v.Entries()
		resp := &causewayv1.WatchResponse{Revision: v.Revision}
		if sent == nil {
			resp.Reset_ = true
			for _, e := range cur {
				resp.Upserts = append(resp.Upserts, e)
			}
		} else {
			for k, e := range cur {
				if old, ok := sent[k]; !ok || old != e {
					resp.Upserts = append(resp.Upserts, e)
				}
			}
			for k := range sent {
				if _, ok := cur[k]; !ok {
					resp.Deletes = append(resp.Deletes, k)
				}
			}
		}
		if resp.Reset_ || resumed || len(resp.Upserts) > 0 || len(resp.Deletes) > 0 {
			resumed = false // a resumed client hears at once, even "no change"
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		sent = cur
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// AnnounceGateway keeps the caller's gateway record in etcd while the call
// lasts (see the proto). The caller must present this cluster's gateway
// identity; the instance must be a DNS label and every address host:port.
func (s *CatalogServer) AnnounceGateway(req *causewayv1.AnnounceGatewayRequest, stream grpc.ServerStreamingServer[causewayv1.AnnounceGatewayResponse]) error {
	ctx := stream.Context()
	f := s.f
	id, err := callerID(ctx, "announce gateway")
	if err != nil {
		return err
	}
	want, err := certs.NewID(f.cfg.TrustDomain, GatewayComponent)
	if err != nil {
		return status.Errorf(codes.Internal, "announce gateway: %v", err)
	}
	if id != want {
		return status.Errorf(codes.PermissionDenied, "announce gateway: %s is not %s", id, want)
	}
	if err := validateAnnouncement(req); err != nil {
		return status.Errorf(codes.InvalidArgument, "announce gateway: %v", err)
	}
	announcer, err := callerKeyHash(ctx)
	if err != nil {
		return err
	}
	err = f.announceGateway(ctx, req.GetInstance(), req.GetAddresses(), announcer, GatewayLeaseTTL, func(lease clientv3.LeaseID) error {
		return stream.Send(&causewayv1.AnnounceGatewayResponse{LeaseId: int64(lease)})
	})
	if errors.Is(err, store.ErrGatewayHeld) {
		return status.Errorf(codes.AlreadyExists,
			"announce gateway: instance %q is announced by another gateway (another key); give each gateway its own instance name", req.GetInstance())
	}
	return err
}

// callerKeyHash is the SHA-256 of the SubjectPublicKeyInfo of the leaf
// the caller presented: what binds a gateway record to its announcer.
func callerKeyHash(ctx context.Context) ([]byte, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "announce gateway: no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, status.Error(codes.Unauthenticated, "announce gateway: no client certificate")
	}
	sum := sha256.Sum256(ti.State.PeerCertificates[0].RawSubjectPublicKeyInfo)
	return sum[:], nil
}

func validateAnnouncement(req *causewayv1.AnnounceGatewayRequest) error {
	if !names.IsDNSLabel(req.GetInstance()) {
		return fmt.Errorf("instance %q is not a DNS label", req.GetInstance())
	}
	if len(req.GetAddresses()) == 0 || len(req.GetAddresses()) > 16 {
		return fmt.Errorf("%d addresses: want 1 to 16", len(req.GetAddresses()))
	}
	for _, a := range req.GetAddresses() {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return fmt.Errorf("address %q is not host:port", a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("address %q: port not in 1-65535", a)
		}
	}
	return nil
}

// callerID is the verified SPIFFE ID of the caller of a gRPC method
// served over mutual TLS; what names the method in errors.
func callerID(ctx context.Context, what string) (certs.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return certs.ID{}, status.Errorf(codes.Unauthenticated, "%s: no peer", what)
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return certs.ID{}, status.Errorf(codes.Unauthenticated, "%s: mutual TLS required", what)
	}
	id, err := certs.PeerID(ti.State)
	if err != nil {
		return certs.ID{}, status.Errorf(codes.Unauthenticated, "%s: %v", what, err)
	}
	return id, nil
}

package federator

import (
	"context"
	"errors"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TrustCluster makes this cluster trust a peer's published trust bundle
// (see the proto): the operator's explicit step for a first bundle with no
// pin, or after the peer's CA was replaced without a signed rotation.
func (s *AdminServer) TrustCluster(ctx context.Context, req *causewayv1.TrustClusterRequest) (*causewayv1.TrustClusterResponse, error) {
	id, err := s.authorize(ctx)
	if err != nil {
		return nil, err
	}
	peer := req.GetCluster()
	if err := validCluster(peer); err != nil {
		return nil, err
	}
	if peer == s.f.cfg.Cluster {
		return nil, status.Errorf(codes.InvalidArgument, "trust cluster %s: it is this federator's own cluster, trusted through its CA directory", peer)
	}
	if fp := req.GetFingerprint(); fp != "" {
		if _, err := certs.ParseFingerprint(fp); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "trust cluster %s: %v", peer, err)
		}
	}
	rec := s.f.trust.publishedRecord(peer)
	if rec == nil {
		return nil, status.Errorf(codes.NotFound, "trust cluster %s: it publishes no trust bundle (is it joined and its federator running?)", peer)
	}
	tb, changed, err := s.f.trust.pin(peer, rec, req.GetFingerprint())
	switch {
	case errors.Is(err, certs.ErrPinNotFound):
		return nil, status.Errorf(codes.FailedPrecondition, "trust cluster %s: %v", peer, err)
	case err != nil:
		return nil, status.Errorf(codes.FailedPrecondition, "trust cluster %s: published bundle refused: %v", peer, err)
	}
	s.f.log.Info("operator trusted peer trust bundle", "peer", peer, "by", id.String(), "fingerprint", req.GetFingerprint(),
		"sequence", tb.Sequence, "fingerprints", tb.Fingerprints(), "changed", changed)
	s.f.republishTrust()
	return &causewayv1.TrustClusterResponse{Cluster: peer, Sequence: tb.Sequence, Fingerprints: tb.Fingerprints(), Changed: changed}, nil
}

package federator

import (
	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"google.golang.org/grpc"
)

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
	select {
	case <-ctx.Done():
		return nil
	case <-f.synced:
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

package federator

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"google.golang.org/protobuf/proto"
)

// kickHeal schedules a check of the cluster and bundle records.
func (f *Federator) kickHeal() {
	select {
	case f.healKicked <- struct{}{}:
	default:
	}
}

// kickExports schedules an export reconcile.
func (f *Federator) kickExports() {
	select {
	case f.exportsChanged <- struct{}{}:
	default:
	}
}

// runHeal keeps this cluster's cluster record and trust bundle in etcd as
// the federator writes them, for the leader's term: it checks them when
// the mirror sees either key change and every HealInterval, when it also
// schedules a full export and import reconcile (which put back deleted,
// corrupted or foreign exports and imports).
func (f *Federator) runHeal(ctx context.Context) {
	t := time.NewTicker(f.cfg.healInterval())
	defer t.Stop()
	var retry <-chan time.Time
	for {
		if err := f.healOnce(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("check own records failed; retrying", "err", err)
			retry = time.After(time.Second)
		} else {
			retry = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-f.healKicked:
		case <-retry:
		case <-t.C:
			f.kickExports()
			f.kickImports()
		}
	}
}

// healOnce puts back the cluster record and the trust bundle when etcd
// lacks them, holds a value that does not decode (or of an unknown schema
// version), or a value that says something else.
func (f *Federator) healOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, etcdAttemptTimeout)
	defer cancel()
	e, present, err := f.store.Get(ctx, store.ClusterKey(f.cfg.Cluster))
	if err != nil {
		return err
	}
	want := f.clusterRecord()
	if got := e.GetCluster(); got == nil || !proto.Equal(got, withVersion(want)) {
		if err := f.store.PutCluster(ctx, want); err != nil {
			return fmt.Errorf("re-assert cluster record: %w", err)
		}
		f.healed("cluster", present)
	}
	e, present, err = f.store.Get(ctx, store.BundleKey(f.cfg.Cluster))
	if err != nil {
		return err
	}
	if got := e.GetBundle(); got == nil || !f.sameBundle(got) {
		if err := f.publishBundle(ctx); err != nil {
			return fmt.Errorf("re-assert trust bundle: %w", err)
		}
		f.healed("bundle", present)
	}
	return nil
}

// healed counts and logs one record put back.
func (f *Federator) healed(kind string, present bool) {
	f.metrics.healed.WithLabelValues(kind).Inc()
	why := "deleted"
	if present {
		why = "changed, undecodable or of an unknown schema version"
	}
	f.log.Warn("own record in etcd was "+why+"; put back", "kind", kind)
}

// clusterRecord is this cluster's record as the federator writes it.
func (f *Federator) clusterRecord() *causewayv1.ClusterRecord {
	ranges := make([]string, len(f.cfg.VIPRanges))
	for i, r := range f.cfg.VIPRanges {
		ranges[i] = r.String()
	}
	return &causewayv1.ClusterRecord{
		Name: f.cfg.Cluster, Region: f.cfg.Region, Zone: f.cfg.Zone,
		VipRanges: ranges, TrustDomain: f.cfg.TrustDomain,
	}
}

// withVersion returns a copy of the cluster record as stored.
func withVersion(r *causewayv1.ClusterRecord) *causewayv1.ClusterRecord {
	c := proto.Clone(r).(*causewayv1.ClusterRecord)
	c.SchemaVersion = store.SchemaVersion
	return c
}

// sameBundle reports whether a stored bundle publishes this cluster's
// current authorities under its name and trust domain and, with a CA set,
// whether every link of its chain is genuine from a link signed by one of
// this cluster's CAs on (certs.TrimBundleHistory keeps all of it): a link
// an etcd writer added or altered makes it differ. The sequence is not
// compared: every replica stamps its own when it publishes.
func (f *Federator) sameBundle(b *causewayv1.TrustBundle) bool {
	if b.GetCluster() != f.cfg.Cluster || b.GetTrustDomain() != f.cfg.TrustDomain ||
		!slices.EqualFunc(b.GetX509Authorities(), f.authorities(), bytes.Equal) {
		return false
	}
	if f.cfg.CAs == nil {
		return true
	}
	kept := certs.TrimBundleHistory(b, f.cfg.CAs.Authorities())
	return kept != nil && len(kept.GetChain()) == len(b.GetChain()) &&
		slices.EqualFunc(kept.GetX509Authorities(), b.GetX509Authorities(), bytes.Equal)
}

package federator

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"google.golang.org/protobuf/proto"
)

// Trust states of a peer's bundle, as ClusterInfo.trust and the
// causeway_federator_peer_bundles metric name them.
const (
	TrustOwn       = "own"
	TrustTrusted   = "trusted"
	TrustUntrusted = "untrusted"
	TrustBehind    = "behind"
)

// Sources of a trust state (TrustState.source).
const (
	trustSourcePin      = "pin"
	trustSourceOperator = "operator"
)

// peerTrust is what the federator accepts of one peer's bundle.
type peerTrust struct {
	trusted   certs.TrustedBundle
	source    string
	status    string // TrustTrusted, TrustUntrusted or TrustBehind
	detail    string
	published *causewayv1.Entry // the entry etcd holds now; nil: none
	checked   *causewayv1.Entry // the published entry last checked
	entry     *causewayv1.Entry // what the catalog feeds for it; nil: nothing
	dirty     bool              // to be persisted
}

// trustKeeper verifies peers' published bundles against what this cluster
// trusts (pins, the operator's TrustCluster, the signed chains since) and
// decides which bundles the catalog feeds to this cluster's gateways and
// DNS shims. Its state is persisted at trust/<self>/<peer>, signed by the
// cluster's CA.
type trustKeeper struct {
	self string
	pins map[string]string // peer -> fingerprint, from Config.TrustPins
	log  *slog.Logger
	m    *metrics

	mu    sync.Mutex // guards peers, own, kick
	peers map[string]*peerTrust
	own   *causewayv1.Entry // this cluster's bundle, from its local CAs
	kick  chan struct{}     // cap 1: a state to persist
}

func newTrustKeeper(self string, pins map[string]string, log *slog.Logger, m *metrics) *trustKeeper {
	return &trustKeeper{self: self, pins: pins, log: log, m: m, peers: map[string]*peerTrust{}, kick: make(chan struct{}, 1)}
}

func (t *trustKeeper) peerLocked(peer string) *peerTrust {
	p := t.peers[peer]
	if p == nil {
		p = &peerTrust{status: TrustUntrusted}
		t.peers[peer] = p
	}
	return p
}

// setOwn makes rec the bundle fed for this cluster.
func (t *trustKeeper) setOwn(rec *causewayv1.TrustBundle) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rec.GetSchemaVersion() != store.SchemaVersion { // as stored: catalog clients read only known versions
		rec = proto.Clone(rec).(*causewayv1.TrustBundle)
		rec.SchemaVersion = store.SchemaVersion
	}
	t.own = &causewayv1.Entry{Key: store.RelativeKey(store.BundleKey(t.self)), Record: &causewayv1.Entry_Bundle{Bundle: rec}}
}

// filter replaces, in entries (a fresh map the caller owns), every
// published bundle with what this cluster trusts of it: its own local
// bundle for itself, the verified version for a peer, nothing for a peer
// not trusted. published holds the entries of entries under the bundles
// prefix (by relative key), so the filter costs nothing per other entry.
func (t *trustKeeper) filter(entries, published map[string]*causewayv1.Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	for key, e := range published {
		peer, ok := strings.CutPrefix(key, store.KindBundles+"/")
		if !ok || peer == t.self {
			continue
		}
		seen[peer] = true
		p := t.peerLocked(peer)
		p.published = e
		if p.checked != e {
			t.checkLocked(peer, p, e)
		}
		if p.entry != nil {
			entries[key] = p.entry
		} else {
			delete(entries, key)
		}
	}
	for peer, p := range t.peers {
		if !seen[peer] {
			p.published, p.checked = nil, nil // a new publication is checked again
		}
	}
	if t.own != nil {
		entries[t.own.GetKey()] = t.own
	}
	t.updateMetricsLocked()
}

// checkLocked verifies peer's published entry e and updates p.
func (t *trustKeeper) checkLocked(peer string, p *peerTrust, e *causewayv1.Entry) {
	p.checked = e
	rec := e.GetBundle()
	log := t.log.With("peer", peer)
	if p.trusted.IsZero() {
		pin, ok := t.pins[peer]
		if !ok {
			p.status = TrustUntrusted
			p.detail = fmt.Sprintf("not pinned: its gateways are refused; after checking its CA fingerprint run `causeway clusters trust %s --fingerprint sha256:...` against this cluster, or set trustPins.%s in the federator config", peer, peer)
			log.Warn("peer trust bundle not trusted yet; its gateways are refused", "fix", p.detail)
			t.m.bundleRefusals.WithLabelValues("not_pinned").Inc()
			return
		}
		tb, err := certs.PinBundle(peer, rec, pin)
		if err != nil {
			p.status, p.detail = TrustUntrusted, fmt.Sprintf("configured pin %s: %v", pin, err)
			log.Warn("peer trust bundle does not match the configured pin; its gateways are refused", "err", err,
				"fix", "check trustPins."+peer+" against `causeway certs inspect` of "+peer+"'s CA")
			t.m.bundleRefusals.WithLabelValues("pin_mismatch").Inc()
			return
		}
		t.acceptLocked(peer, p, tb, trustSourcePin, rec.GetSequence())
		return
	}
	tb, err := certs.FollowBundle(peer, p.trusted, rec)
	moved := tb.Sequence != p.trusted.Sequence
	if moved {
		t.acceptLocked(peer, p, tb, p.source, rec.GetSequence())
	}
	if err == nil {
		return
	}
	reason := "invalid"
	switch {
	case errors.Is(err, certs.ErrBundleRollback):
		reason = "rollback"
	case errors.Is(err, certs.ErrBundleNotChained):
		reason = "not_chained"
	}
	t.m.bundleRefusals.WithLabelValues(reason).Inc()
	p.status = TrustBehind
	p.detail = fmt.Sprintf("%v; still trusting sequence %d; if %s's CA was replaced on purpose, re-pin it: `causeway clusters trust %s --fingerprint <its new CA>`",
		err, p.trusted.Sequence, peer, peer)
	log.Warn("refusing published peer trust bundle; keeping the trusted one", "err", err, "trusted_sequence", p.trusted.Sequence,
		"fix", "if the CA change is legitimate: causeway clusters trust "+peer+" --fingerprint <new CA fingerprint>")
}

// acceptLocked makes tb the trusted version of peer's bundle.
func (t *trustKeeper) acceptLocked(peer string, p *peerTrust, tb certs.TrustedBundle, source string, head uint64) {
	changed := !sameTrusted(p.trusted, tb)
	p.trusted, p.source = tb, source
	p.status, p.detail = TrustTrusted, ""
	if tb.Sequence != head {
		p.status = TrustBehind
		p.detail = fmt.Sprintf("published sequence %d does not chain from the trusted sequence %d", head, tb.Sequence)
	}
	if changed || p.entry == nil {
		p.entry = trustedEntry(peer, tb)
	}
	if changed {
		p.dirty = true
		select {
		case t.kick <- struct{}{}:
		default:
		}
		t.log.Info("peer trust bundle accepted", "peer", peer, "sequence", tb.Sequence, "source", source,
			"fingerprints", tb.Fingerprints())
	}
}

// trustedEntry is the catalog entry of peer's trusted bundle.
func trustedEntry(peer string, tb certs.TrustedBundle) *causewayv1.Entry {
	return &causewayv1.Entry{Key: store.RelativeKey(store.BundleKey(peer)), Record: &causewayv1.Entry_Bundle{Bundle: &causewayv1.TrustBundle{
		SchemaVersion: store.SchemaVersion, Cluster: peer, TrustDomain: tb.TrustDomain, Sequence: tb.Sequence,
		X509Authorities: certs.AuthoritiesDER(tb.Authorities)}}}
}

func sameTrusted(a, b certs.TrustedBundle) bool {
	if a.Sequence != b.Sequence || a.TrustDomain != b.TrustDomain || len(a.Authorities) != len(b.Authorities) {
		return false
	}
	for i := range a.Authorities {
		if !a.Authorities[i].Equal(b.Authorities[i]) {
			return false
		}
	}
	return true
}

func (t *trustKeeper) updateMetricsLocked() {
	counts := map[string]int{TrustTrusted: 0, TrustUntrusted: 0, TrustBehind: 0}
	for _, p := range t.peers {
		if p.published != nil {
			counts[p.status]++
		}
	}
	for s, n := range counts {
		t.m.peerBundles.WithLabelValues(s).Set(float64(n))
	}
}

// pin trusts peer's published record rec as the operator asked
// (fingerprint "" = as published). It reports whether anything changed.
func (t *trustKeeper) pin(peer string, rec *causewayv1.TrustBundle, fingerprint string) (certs.TrustedBundle, bool, error) {
	tb, err := certs.PinBundle(peer, rec, fingerprint)
	if err != nil {
		return certs.TrustedBundle{}, false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peerLocked(peer)
	changed := !sameTrusted(p.trusted, tb)
	t.acceptLocked(peer, p, tb, trustSourceOperator, rec.GetSequence())
	p.checked = nil // re-check the published entry on the next view
	return tb, changed, nil
}

// published returns the entries etcd holds now for peers' bundles, keyed
// by relative key, to rebuild a view after a trust change.
func (t *trustKeeper) published() map[string]*causewayv1.Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]*causewayv1.Entry{}
	for _, p := range t.peers {
		if p.published != nil {
			out[p.published.GetKey()] = p.published
		}
	}
	return out
}

// publishedRecord returns peer's bundle as etcd holds it now.
func (t *trustKeeper) publishedRecord(peer string) *causewayv1.TrustBundle {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[peer]; p != nil {
		return p.published.GetBundle()
	}
	return nil
}

// status returns how peer's bundle is trusted.
func (t *trustKeeper) status(peer string) (status, detail string, fingerprints []string) {
	if peer == t.self {
		t.mu.Lock()
		defer t.mu.Unlock()
		cas, _ := certs.ParseAuthorities(t.own.GetBundle().GetX509Authorities())
		return TrustOwn, "", certs.TrustedBundle{Authorities: cas}.Fingerprints()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[peer]
	if !ok || p.published == nil && p.trusted.IsZero() {
		return TrustUntrusted, "publishes no trust bundle", nil
	}
	return p.status, p.detail, p.trusted.Fingerprints()
}

// restore loads the persisted states, keeping those signed by one of own
// (this cluster's CAs); others are logged and ignored.
func (t *trustKeeper) restore(states map[string]*causewayv1.TrustState, own []*x509.Certificate) {
	t.mu.Lock()
	defer t.mu.Unlock()
	peers := make([]string, 0, len(states))
	for peer := range states {
		peers = append(peers, peer)
	}
	sort.Strings(peers)
	for _, peer := range peers {
		st := states[peer]
		tb, err := certs.VerifyTrustState(own, t.self, peer, st)
		if err != nil {
			t.log.Warn("ignoring stored trust state (not signed by this cluster's CA)", "peer", peer, "err", err,
				"fix", "the peer must be pinned again unless trustPins has it")
			t.m.bundleRefusals.WithLabelValues("bad_state").Inc()
			continue
		}
		p := t.peerLocked(peer)
		p.trusted, p.source, p.status, p.checked, p.entry = tb, st.GetSource(), TrustTrusted, nil, trustedEntry(peer, tb)
	}
}

// dirtyStates returns the states to persist, signed by ca, and marks them
// clean; markDirty puts them back after a failed write.
func (t *trustKeeper) dirtyStates(ca *certs.CA) ([]*causewayv1.TrustState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*causewayv1.TrustState
	for peer, p := range t.peers {
		if !p.dirty || p.trusted.IsZero() {
			continue
		}
		st := &causewayv1.TrustState{Verifier: t.self, Peer: peer, TrustDomain: p.trusted.TrustDomain,
			Sequence: p.trusted.Sequence, X509Authorities: certs.AuthoritiesDER(p.trusted.Authorities), Source: p.source}
		if err := certs.SignTrustState(ca, st); err != nil {
			return nil, err
		}
		p.dirty = false
		out = append(out, st)
	}
	return out, nil
}

// markDirty marks every trusted peer (or those of states) to be persisted.
func (t *trustKeeper) markDirty(states []*causewayv1.TrustState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for peer, p := range t.peers {
		if states == nil || containsPeer(states, peer) {
			p.dirty = true
		}
	}
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func containsPeer(states []*causewayv1.TrustState, peer string) bool {
	for _, s := range states {
		if s.GetPeer() == peer {
			return true
		}
	}
	return false
}

// persist writes dirty states until ctx ends, retrying failures.
func (f *Federator) persistTrust(ctx context.Context) {
	t := f.trust
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
		if f.cfg.CAs == nil {
			continue // no CA key to sign with: the state lives in memory only
		}
		ca, err := f.cfg.CAs.SigningCA()
		if err != nil {
			f.log.Warn("cannot sign trust states", "err", err)
			continue
		}
		states, err := t.dirtyStates(ca)
		if err != nil {
			f.log.Warn("cannot sign trust states", "err", err)
			continue
		}
		for i, st := range states {
			if err := f.store.PutTrust(ctx, st); err != nil {
				if ctx.Err() != nil {
					return
				}
				f.log.Warn("persist trust state failed; retrying", "peer", st.GetPeer(), "err", err)
				t.markDirty(states[i:])
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				break
			}
		}
	}
}

package certs

import (
	"crypto/x509"
	"fmt"
	"slices"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// FollowBundle moves a verifier's trust in cluster's bundle forward along
// the chain of the published record rec. Starting from trusted, each link
// with a higher sequence that is signed by a CA of the currently trusted
// version becomes the trusted version; links that do not verify are
// skipped, so nothing an etcd writer adds without a trusted CA key is ever
// trusted. It returns the new trusted version, and:
//   - nil when it is rec itself;
//   - an error wrapping ErrBundleRollback when rec is older than trusted
//     (trusted is returned unchanged);
//   - an error wrapping ErrBundleNotChained when rec cannot be reached
//     (the returned version may still have moved forward);
//   - another error when rec is malformed or not cluster's.
func FollowBundle(cluster string, trusted TrustedBundle, rec *causewayv1.TrustBundle) (TrustedBundle, error) {
	td, auth, err := checkChainedRecord(cluster, rec)
	if err != nil {
		return trusted, err
	}
	if td != trusted.TrustDomain {
		return trusted, fmt.Errorf("follow bundle of %s: trust domain %s, trusted %s: %w", cluster, td, trusted.TrustDomain, ErrBundleMismatch)
	}
	switch seq := rec.GetSequence(); {
	case seq <= trusted.Sequence && sameCertSet(auth, trusted.Authorities):
		// The trusted CAs, published again (or by another replica that
		// signed the same change with a lower sequence): nothing to follow.
		return trusted, nil
	case seq < trusted.Sequence:
		return trusted, fmt.Errorf("follow bundle of %s: sequence %d, trusted %d: %w", cluster, seq, trusted.Sequence, ErrBundleRollback)
	}
	cur := walkChain(cluster, trusted, rec.GetChain())
	if cur.Sequence != rec.GetSequence() {
		return cur, fmt.Errorf("follow bundle of %s: sequence %d (CAs %s) does not chain from the trusted sequence %d (CAs %s): %w",
			cluster, rec.GetSequence(), fingerprintList(auth), cur.Sequence, fingerprintList(cur.Authorities), ErrBundleNotChained)
	}
	return cur, nil
}

// PinBundle starts a verifier's trust in cluster's bundle: with an empty
// fingerprint, the published record rec as it is (trust on first use,
// the operator's explicit step); otherwise the published CA with that
// fingerprint, followed along rec's chain as far as it signed (the result
// may be behind rec, see FollowBundle). The error wraps ErrPinNotFound
// when no CA of rec or its chain has the fingerprint.
func PinBundle(cluster string, rec *causewayv1.TrustBundle, fingerprint string) (TrustedBundle, error) {
	td, auth, err := checkChainedRecord(cluster, rec)
	if err != nil {
		return TrustedBundle{}, err
	}
	if fingerprint == "" {
		return TrustedBundle{TrustDomain: td, Sequence: rec.GetSequence(), Authorities: auth}, nil
	}
	fp, err := ParseFingerprint(fingerprint)
	if err != nil {
		return TrustedBundle{}, err
	}
	pinned := slices.IndexFunc(auth, func(c *x509.Certificate) bool { return Fingerprint(c) == fp })
	start := TrustedBundle{TrustDomain: td}
	if pinned >= 0 {
		start.Authorities = []*x509.Certificate{auth[pinned]}
	}
	for _, l := range rec.GetChain() {
		if start.Authorities != nil {
			break
		}
		cas, err := linkAuthorities(td, l)
		if err != nil {
			continue
		}
		if i := slices.IndexFunc(cas, func(c *x509.Certificate) bool { return Fingerprint(c) == fp }); i >= 0 {
			start.Authorities = []*x509.Certificate{cas[i]}
		}
	}
	if start.Authorities == nil {
		return TrustedBundle{}, fmt.Errorf("pin bundle of %s: %s (published: %s): %w", cluster, fp, fingerprintList(auth), ErrPinNotFound)
	}
	cur := walkChain(cluster, start, rec.GetChain())
	if cur.Sequence == 0 {
		// The pinned CA signed nothing published: trust it alone, at the
		// sequence before the oldest link, so the chain can still move on.
		cur.Sequence = firstSequence(rec) - 1
	}
	return cur, nil
}

func firstSequence(rec *causewayv1.TrustBundle) uint64 {
	if c := rec.GetChain(); len(c) > 0 && c[0].GetSequence() > 0 {
		return c[0].GetSequence()
	}
	return max(rec.GetSequence(), 1)
}

// walkChain follows chain from trusted: every link with a higher sequence
// signed by a CA of the current version becomes current.
func walkChain(cluster string, trusted TrustedBundle, chain []*causewayv1.BundleLink) TrustedBundle {
	cur := trusted
	for _, l := range chain {
		if l.GetSequence() <= cur.Sequence {
			continue
		}
		cas, err := linkAuthorities(cur.TrustDomain, l)
		if err != nil {
			continue
		}
		digest := bundleLinkDigest(linkTag, cluster, cur.TrustDomain, l.GetSequence(), l.GetX509Authorities())
		if !verifyDigest(cur.Authorities, l.GetSigner(), l.GetSignature(), digest) {
			continue
		}
		cur = TrustedBundle{TrustDomain: cur.TrustDomain, Sequence: l.GetSequence(), Authorities: cas}
	}
	return cur
}

// checkChainedRecord checks rec like CheckPublishedBundle, bounds its
// chain, and requires its last link, if any, to be rec itself.
func checkChainedRecord(cluster string, rec *causewayv1.TrustBundle) (string, []*x509.Certificate, error) {
	td, auth, err := CheckPublishedBundle(cluster, rec)
	if err != nil {
		return "", nil, err
	}
	chain := rec.GetChain()
	if len(chain) > 2*MaxBundleChain {
		return "", nil, fmt.Errorf("check bundle of %s: chain of %d links, at most %d: %w", cluster, len(chain), 2*MaxBundleChain, ErrBundleNotChained)
	}
	if n := len(chain); n > 0 {
		head := chain[n-1]
		if head.GetSequence() != rec.GetSequence() || !slices.EqualFunc(head.GetX509Authorities(), rec.GetX509Authorities(), slices.Equal[[]byte]) {
			return "", nil, fmt.Errorf("check bundle of %s: the record is not the last link of its chain: %w", cluster, ErrBundleNotChained)
		}
	}
	return td, auth, nil
}

func fingerprintList(cas []*x509.Certificate) string {
	return fmt.Sprint(TrustedBundle{Authorities: cas}.Fingerprints())
}

// SignTrustState signs a verifier's trust state with ca (a CA of the
// verifier), setting st's signer and signature.
func SignTrustState(ca *CA, st *causewayv1.TrustState) error {
	signer, sig, err := signDigest(ca, trustStateDigest(st))
	if err != nil {
		return fmt.Errorf("sign trust state %s/%s: %w", st.GetVerifier(), st.GetPeer(), err)
	}
	st.Signer, st.Signature = signer, sig
	return nil
}

// VerifyTrustState checks a trust state read from trust/<verifier>/<peer>:
// it must name both, be signed by one of own (the verifier's CAs, from its
// local CA directory) and hold CAs of peer's trust domain. It returns the
// trusted version it records.
func VerifyTrustState(own []*x509.Certificate, verifier, peer string, st *causewayv1.TrustState) (TrustedBundle, error) {
	switch {
	case st.GetVerifier() != verifier || st.GetPeer() != peer:
		return TrustedBundle{}, fmt.Errorf("verify trust state %s/%s: names %s/%s: %w", verifier, peer, st.GetVerifier(), st.GetPeer(), ErrBundleMismatch)
	case ClusterOfTrustDomain(st.GetTrustDomain()) != peer:
		return TrustedBundle{}, fmt.Errorf("verify trust state %s/%s: trust domain %q: %w", verifier, peer, st.GetTrustDomain(), ErrBundleMismatch)
	case !verifyDigest(own, st.GetSigner(), st.GetSignature(), trustStateDigest(st)):
		return TrustedBundle{}, fmt.Errorf("verify trust state %s/%s: not signed by a CA of %s: %w", verifier, peer, verifier, ErrBundleNotChained)
	}
	cas, err := linkAuthorities(st.GetTrustDomain(), &causewayv1.BundleLink{X509Authorities: st.GetX509Authorities()})
	if err != nil {
		return TrustedBundle{}, fmt.Errorf("verify trust state %s/%s: %w", verifier, peer, err)
	}
	return TrustedBundle{TrustDomain: st.GetTrustDomain(), Sequence: st.GetSequence(), Authorities: cas}, nil
}

func trustStateDigest(st *causewayv1.TrustState) []byte {
	tag := stateTag + "\x00" + st.GetVerifier() + "\x00" + st.GetSource()
	return bundleLinkDigest(tag, st.GetPeer(), st.GetTrustDomain(), st.GetSequence(), st.GetX509Authorities())
}

// sameCertSet reports whether a and b hold the same certificates, in any
// order.
func sameCertSet(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		if !slices.ContainsFunc(b, c.Equal) {
			return false
		}
	}
	return true
}

package gateway

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway/authz"
)

// Workload identity and authorization on the data path (issue 19):
//
//   - Egress: Config.Sources maps each client address to its workload
//     identity, sent in StreamHeader.source_identity (L4 flows) or in the
//     SourceIdentityHeader of each request (L7: streams are pooled per
//     service port, so the identity travels per request). The egress
//     gateway deletes any SourceIdentityHeader a client sends.
//   - Ingress: a claim is accepted only in the trust domain of the peer
//     connection (authz.AcceptClaim); anything else refuses that stream
//     or request (FORBIDDEN, 403) and is counted. Then, with
//     Config.Authorization, the policy decides before a backend is dialed:
//     L4 FORBIDDEN or RATE_LIMITED, L7 403 or 429 with Retry-After.
//   - Flows an egress gateway carries to its own cluster's backends are
//     not authorized: they never reach an ingress gateway, and a caller in
//     the exporting cluster can reach the backends directly anyway.

// SourceIdentityHeader carries the client workload's SPIFFE ID on each
// request of an L7 stream (docs/protocol.md). Only gateways set it: the
// egress gateway deletes any a client sends, the ingress gateway accepts
// it only in the peer's trust domain and deletes it before the backend.
const SourceIdentityHeader = "Causeway-Source-Identity"

// Authorizer supplies the policies and rate limits the ingress gateway
// enforces: an *authz.Table fed by the static file or the Kubernetes API.
type Authorizer interface {
	// Snapshot returns the policies in force; never nil.
	Snapshot() *authz.Snapshot
}

var _ Authorizer = (*authz.Table)(nil)

// Results of causeway_gateway_authz_decisions_total.
const (
	authzAllowed     = "allowed"
	authzDenied      = "denied"
	authzRateLimited = "rate_limited"
	// authzBadIdentity: the peer claimed an identity outside its trust
	// domain, or a malformed one.
	authzBadIdentity = "bad_identity"
)

// sourceIdentity is the identity the egress gateway claims for a client at
// addr: "" (the cluster's anonymous identity) without Config.Sources, for
// an address it cannot parse, or for an anonymous client.
func (g *Gateway) sourceIdentity(addr netip.Addr) string {
	if g.cfg.Sources == nil || !addr.IsValid() {
		return ""
	}
	p := g.cfg.Sources.Resolve(addr)
	if p.IsZero() || p.IsAnonymous() {
		return ""
	}
	return p.String()
}

// requestIdentity is sourceIdentity for the client of an HTTP request
// (its RemoteAddr, ip:port).
func (g *Gateway) requestIdentity(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return ""
	}
	return g.sourceIdentity(ap.Addr().Unmap())
}

// acceptClaim returns the principal a peer in trust domain peerTD claims,
// or counts and logs (rate-limited) a claim it may not make.
func (g *Gateway) acceptClaim(peerTD, claimed, service, peer string) (authz.Principal, error) {
	p, err := authz.AcceptClaim(peerTD, claimed)
	if err == nil {
		return p, nil
	}
	g.metrics.decisions.inc(service, peer, authzBadIdentity)
	kind := "malformed"
	if errors.Is(err, authz.ErrForeignTrustDomain) {
		kind = "foreign trust domain"
	}
	if ok, n, suppressed := g.claimLogs.Failure(kind); ok {
		g.log.Warn("source identity refused", "peer", peer, "trust_domain", peerTD, "service", service,
			"err", err, "refusals", n, "not_logged", suppressed)
	}
	return authz.Principal{}, err
}

// checkClaim accepts the source identity of stream header h from a peer in
// trust domain peerTD, or refuses the stream FORBIDDEN.
func (g *Gateway) checkClaim(v *catalog.View, h *causewayv1.StreamHeader, peerTD string) (authz.Principal, *refusal) {
	key := catalog.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()}
	p, err := g.acceptClaim(peerTD, h.GetSourceIdentity(), serviceLabel(v, key), peerLabel(v, h.GetSourceCluster()))
	if err != nil {
		return p, &refusal{causewayv1.StreamCode_STREAM_CODE_FORBIDDEN, "source identity refused: " + err.Error()}
	}
	return p, nil
}

// authorizeFlow decides an L4 flow of principal p to h's service port:
// nil to go on, else the refusal (FORBIDDEN or RATE_LIMITED).
func (g *Gateway) authorizeFlow(v *catalog.View, h *causewayv1.StreamHeader, p authz.Principal) *refusal {
	if g.cfg.Authorization == nil {
		return nil
	}
	svc := authz.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()}
	service := serviceLabel(v, catalog.ServiceKey{Namespace: svc.Namespace, Name: svc.Name})
	peer := peerLabel(v, h.GetSourceCluster())
	status, msg, _ := g.authorize(svc, int32(h.GetPort()), p, nil, service, peer)
	switch status {
	case http.StatusForbidden:
		return &refusal{causewayv1.StreamCode_STREAM_CODE_FORBIDDEN, msg}
	case http.StatusTooManyRequests:
		return &refusal{causewayv1.StreamCode_STREAM_CODE_RATE_LIMITED, msg}
	}
	return nil
}

// authorize decides p's flow (l7 nil) or request to port of svc and
// counts the decision: 0 to go on, else the HTTP status (403 or 429), a
// message and, for 429, the Retry-After seconds.
func (g *Gateway) authorize(svc authz.ServiceKey, port int32, p authz.Principal, l7 *authz.Request,
	service, peer string) (status int, msg string, retryAfter int) {
	snap := g.cfg.Authorization.Snapshot()
	d := snap.Decide(svc, port, p, l7)
	if !d.Allowed {
		g.metrics.decisions.inc(service, peer, authzDenied)
		msg = string(d.Reason) + ": " + p.String() + " may not call " + svc.String() + ":" + strconv.Itoa(int(port))
		if d.Policy != "" {
			msg += " (policy " + d.Policy + ")"
		}
		return http.StatusForbidden, msg, 0
	}
	if l := snap.Limit(svc, port, p); !l.Allowed {
		g.metrics.decisions.inc(service, peer, authzRateLimited)
		retryAfter = authz.RetryAfterSeconds(l.RetryAfter)
		return http.StatusTooManyRequests, "RateLimited: " + p.String() + " is over " + l.Policy +
			"; retry in " + strconv.Itoa(retryAfter) + "s", retryAfter
	}
	g.metrics.decisions.inc(service, peer, authzAllowed)
	return 0, "", 0
}

// authorizeRequest authorizes one request of an L7 stream serving t: it
// accepts the request's claimed identity, deletes the header, and decides.
// It answers the request and returns false when the request may not go on.
func (g *Gateway) authorizeRequest(w http.ResponseWriter, r *http.Request, t l7Target) bool {
	claims := r.Header.Values(SourceIdentityHeader)
	r.Header.Del(SourceIdentityHeader)
	claimed := ""
	if len(claims) > 0 {
		claimed = claims[0]
	}
	if len(claims) > 1 {
		claimed = "\x00" // several claims: malformed, whatever they say
	}
	p, err := g.acceptClaim(t.peerTD, claimed, t.serviceLabel, t.peerLabel)
	if err != nil {
		http.Error(w, "source identity refused", http.StatusForbidden)
		return false
	}
	if g.cfg.Authorization == nil {
		return true
	}
	svc := authz.ServiceKey{Namespace: t.key.Namespace, Name: t.key.Name}
	status, msg, retryAfter := g.authorize(svc, int32(t.port), p, &authz.Request{Method: r.Method, Path: r.URL.Path},
		t.serviceLabel, t.peerLabel)
	if status == 0 {
		return true
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	g.log.Debug("request refused by authorization", "peer", t.peerLabel, "service", t.serviceLabel, "status", status, "err", msg)
	http.Error(w, msg, status)
	return false
}

// isFinalRefusal reports whether a peer's refusal ends the flow instead of
// moving it to the next candidate: authorization answers (FORBIDDEN,
// RATE_LIMITED) are the exporting side's word, not a failure
// (docs/protocol.md).
func isFinalRefusal(err error) bool {
	switch refusalCode(err) {
	case causewayv1.StreamCode_STREAM_CODE_FORBIDDEN, causewayv1.StreamCode_STREAM_CODE_RATE_LIMITED:
		return true
	}
	return false
}

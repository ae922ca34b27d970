// Package authz owns who may call whom across clusters: workload
// identities (Principal) and how a gateway learns them (SourceResolver,
// AcceptClaim), the AuthorizationPolicy and RateLimitPolicy model
// (causeway.dev/v1alpha1, or the static file), their validation into
// status conditions, the compiled decision (Snapshot.Decide), the per
// caller token buckets (Snapshot.Limit) and the audit record of decisions.
//
// It is pure logic: no sockets, no Kubernetes clients, no metrics (callers
// count). The one goroutine is JSONLinesSink's writer.
//
// Rules the package keeps:
//   - A claimed identity is accepted only in the trust domain of the
//     authenticated peer connection (AcceptClaim): a compromised cluster
//     can speak for its own workloads and nobody else's.
//   - A caller the local gateway cannot attribute to a workload is the
//     cluster's anonymous identity "spiffe://<cluster>.<domain>/anonymous",
//     never the zero Principal; a Source naming a namespace or
//     ServiceAccount (even "*") does not match it.
//   - Evaluation follows Istio's AuthorizationPolicy order without CUSTOM:
//     any matching Deny policy refuses; else, if Allow policies apply to
//     the service port, one of them must match; else the cluster's default
//     action (Allow unless configured Deny) decides. Deny-first lets an
//     owner carve an exception ("everyone in north except sa/batch")
//     without enumerating every other caller, and no Allow policy can
//     override it. Unlike Istio, the fallback is configurable: Istio
//     allows when no Allow policy applies; a cluster here can default to
//     Deny.
//   - On an L4 flow, operations (methods, paths) cannot be checked: a rule
//     with `to` never matches in an Allow policy and matches whatever `to`
//     says in a Deny policy, as Istio does for HTTP fields on TCP: fail
//     closed both ways.
//   - A Table enforces the last good version of every policy: an invalid
//     version never replaces a valid one; a policy missing from an update
//     is removed. A policy whose service or port does not exist (yet) is
//     enforced all the same, with ResolvedRefs=False, so a service is
//     protected from its first flow.
//   - A Snapshot is immutable apart from its token buckets: Decide and
//     Limit never wait for Update and Decide does not allocate.
//   - Rate limits are per Table (per gateway instance) and bounded in
//     memory per policy; an update that does not change a policy's bucket
//     keeps its callers' state. Time is injected (LimiterConfig.Now).
package authz

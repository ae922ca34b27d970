package authz

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The API group and kinds of Causeway's policy CRDs
// (deploy/crds/causeway.dev_*.yaml). Both kinds are namespaced and live in
// the exporting cluster, in the namespace of the service they select.
const (
	GroupName               = "causeway.dev"
	Version                 = "v1alpha1"
	KindAuthorizationPolicy = "AuthorizationPolicy"
	KindRateLimitPolicy     = "RateLimitPolicy"
)

// GroupVersion is causeway.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

var (
	// SchemeBuilder registers the policy kinds and their lists.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the policy kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AuthorizationPolicy{}, &AuthorizationPolicyList{}, &RateLimitPolicy{}, &RateLimitPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Action is what a matching AuthorizationPolicy does.
type Action string

const (
	// ActionAllow lets matching requests through (if no Deny policy
	// matches them).
	ActionAllow Action = "Allow"
	// ActionDeny refuses matching requests, whatever Allow policies say.
	ActionDeny Action = "Deny"
)

// AuthorizationPolicy says which principals may call an exported service
// (Action Allow) or may not (Action Deny), on which ports and, on L7
// ports, with which methods and paths. See the package documentation for
// how policies combine.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AuthorizationPolicySpec `json:"spec"`
	Status PolicyStatus            `json:"status,omitempty"`
}

// AuthorizationPolicySpec is the desired state of an AuthorizationPolicy.
type AuthorizationPolicySpec struct {
	// Service is the name of the exported service the policy applies to,
	// in the policy's namespace.
	Service string `json:"service"`
	// Ports are the service ports the policy applies to. If empty, every
	// port of the service.
	Ports []int32 `json:"ports,omitempty"`
	// Action is Allow or Deny. If empty, Allow.
	Action Action `json:"action,omitempty"`
	// Rules are ORed: the policy matches a request that matches any rule.
	// At least one.
	Rules []Rule `json:"rules"`
}

// Rule matches requests from any of From and, if To is set, to any of To.
type Rule struct {
	// From are the calling principals; at least one.
	From []Source `json:"from"`
	// To are the operations on L7 ports. If empty, every request. A rule
	// with To never matches an L4 flow in an Allow policy and matches it
	// whatever To says in a Deny policy (fail closed both ways).
	To []Operation `json:"to,omitempty"`
}

// Source matches principals. Each field is a pattern: "*" (anything),
// "prefix*", "*suffix", or an exact name; an omitted field matches
// anything. At least one field is set (write cluster: "*" for every
// caller). An anonymous caller has no namespace or ServiceAccount, so a
// Source that sets Namespace or ServiceAccount (even to "*") never matches
// it.
type Source struct {
	// Cluster is the calling cluster's name.
	Cluster string `json:"cluster,omitempty"`
	// Namespace is the calling workload's namespace.
	Namespace string `json:"namespace,omitempty"`
	// ServiceAccount is the calling workload's ServiceAccount.
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// Operation matches L7 requests: any of Methods and any of Paths. At least
// one of the two is set; an empty one matches anything.
type Operation struct {
	// Methods are HTTP methods, compared exactly ("GET", "POST").
	Methods []string `json:"methods,omitempty"`
	// Paths are request paths (without the query): "/exact", "/prefix*"
	// (a plain string prefix, as in Istio: "/api/*" matches "/api/v1"
	// but not "/api") or "*". gRPC calls have paths "/package.Service/Method".
	Paths []string `json:"paths,omitempty"`
}

// PolicyStatus is the observed state of a policy of either kind: the
// Accepted and ResolvedRefs conditions (see Conditions).
type PolicyStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AuthorizationPolicyList is a list of AuthorizationPolicy.
type AuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationPolicy `json:"items"`
}

// RateLimitKey says what a rate limit counts separately.
type RateLimitKey string

const (
	// KeyPrincipal gives every calling principal its own bucket.
	KeyPrincipal RateLimitKey = "Principal"
	// KeyCluster gives every calling cluster its own bucket.
	KeyCluster RateLimitKey = "Cluster"
)

// RateLimitPolicy limits how often each caller (principal or cluster) may
// open a flow (L4 ports) or send a request (L7 ports) to an exported
// service, with a token bucket per caller at each ingress gateway instance.
type RateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RateLimitPolicySpec `json:"spec"`
	Status PolicyStatus        `json:"status,omitempty"`
}

// RateLimitPolicySpec is the desired state of a RateLimitPolicy: a token
// bucket of Burst tokens per key, refilled with Requests tokens every
// Period.
type RateLimitPolicySpec struct {
	// Service is the name of the exported service, in the policy's
	// namespace.
	Service string `json:"service"`
	// Ports are the service ports limited. If empty, every port.
	Ports []int32 `json:"ports,omitempty"`
	// Key is Principal or Cluster. If empty, Principal.
	Key RateLimitKey `json:"key,omitempty"`
	// Requests is how many flows or requests a key may have per Period in
	// the long run; at least 1.
	Requests int32 `json:"requests"`
	// Period is the refill period. If zero, 1s.
	Period metav1.Duration `json:"period,omitempty"`
	// Burst is how many a key may have at once. If zero, Requests.
	Burst int32 `json:"burst,omitempty"`
}

// RateLimitPolicyList is a list of RateLimitPolicy.
type RateLimitPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RateLimitPolicy `json:"items"`
}

// ServiceKey names an exported service.
type ServiceKey struct {
	Namespace string
	Name      string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// PolicyKey names a policy of either kind.
type PolicyKey struct {
	Namespace string
	Name      string
}

func (k PolicyKey) String() string { return k.Namespace + "/" + k.Name }

// Key is p's namespace/name.
func (p *AuthorizationPolicy) Key() PolicyKey { return PolicyKey{Namespace: p.Namespace, Name: p.Name} }

// Key is p's namespace/name.
func (p *RateLimitPolicy) Key() PolicyKey { return PolicyKey{Namespace: p.Namespace, Name: p.Name} }

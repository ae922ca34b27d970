package authz

import (
	"fmt"

	"github.com/causeway-mesh/causeway/internal/lib/configfile"
	"go.yaml.in/yaml/v3"
)

// StaticVersion is the static authorization file format version this
// build reads.
const StaticVersion = 1

// StaticFile is the static (non-Kubernetes) authorization file. Policies
// are the CRD objects without status, so a policy moves between the two
// modes unchanged; identities stand in for the Pod informer.
type StaticFile struct {
	// Version must be 1.
	Version int `json:"version"`
	// DefaultAction is Allow or Deny. If empty, Allow.
	DefaultAction Action `json:"defaultAction,omitempty" want:"Allow or Deny"`
	// Identities map local client address ranges to workload identities.
	Identities []Identity                  `json:"identities,omitempty"`
	Policies   []StaticAuthorizationPolicy `json:"policies,omitempty"`
	RateLimits []StaticRateLimitPolicy     `json:"rateLimits,omitempty"`
}

// StaticMeta is the part of a policy's metadata the static format takes.
type StaticMeta struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// StaticAuthorizationPolicy is one AuthorizationPolicy. APIVersion and
// Kind are optional; if given they must be causeway.dev/v1alpha1 and
// AuthorizationPolicy.
type StaticAuthorizationPolicy struct {
	APIVersion string                  `json:"apiVersion,omitempty"`
	Kind       string                  `json:"kind,omitempty"`
	Metadata   StaticMeta              `json:"metadata"`
	Spec       AuthorizationPolicySpec `json:"spec"`
}

// StaticRateLimitPolicy is one RateLimitPolicy. APIVersion and Kind are
// optional; if given they must be causeway.dev/v1alpha1 and
// RateLimitPolicy.
type StaticRateLimitPolicy struct {
	APIVersion string              `json:"apiVersion,omitempty"`
	Kind       string              `json:"kind,omitempty"`
	Metadata   StaticMeta          `json:"metadata"`
	Spec       RateLimitPolicySpec `json:"spec"`
}

// Static is a loaded static authorization file.
type Static struct {
	// Set is for Table.Update.
	Set Set
	// Resolver maps local client addresses to identities.
	Resolver *StaticResolver
}

// ParseStatic decodes a static authorization file for the local cluster in
// clustersetDomain strictly (an unknown field is an error naming it) and
// validates everything in it, without reference checks (Table.Update makes
// them). It fails on the first decoding error, or lists every problem,
// each naming the entry and the field (`policies[1] (shop/cart):
// spec.rules[0].from[0].namespace: ...`). A file that fails must not
// replace the last good one.
func ParseStatic(data []byte, cluster, clustersetDomain string) (*Static, error) {
	var f StaticFile
	if err := configfile.Decode(data, &f, configfile.Options{Label: policyLabel}); err != nil {
		return nil, err
	}
	switch f.Version {
	case StaticVersion:
	case 0:
		return nil, fmt.Errorf("version: required (this build reads version %d)", StaticVersion)
	default:
		return nil, fmt.Errorf("version: %d is not supported, want %d", f.Version, StaticVersion)
	}
	var errs []error
	switch f.DefaultAction {
	case "", ActionAllow, ActionDeny:
	default:
		errs = append(errs, fmt.Errorf("defaultAction: unsupported value %q, want Allow or Deny", f.DefaultAction))
	}
	res, err := NewStaticResolver(cluster, clustersetDomain, f.Identities)
	if err != nil {
		errs = append(errs, err)
	}
	st := &Static{Resolver: res, Set: Set{DefaultAction: f.DefaultAction}}
	for i, s := range f.Policies {
		p := &AuthorizationPolicy{Spec: s.Spec}
		p.APIVersion, p.Kind = GroupVersion.String(), KindAuthorizationPolicy
		p.Namespace, p.Name = s.Metadata.Namespace, s.Metadata.Name
		st.Set.Policies = append(st.Set.Policies, p)
		errs = staticErr(errs, fmt.Sprintf("policies[%d] (%s)", i, p.Key()), typeErr(s.APIVersion, s.Kind, KindAuthorizationPolicy))
	}
	for i, s := range f.RateLimits {
		p := &RateLimitPolicy{Spec: s.Spec}
		p.APIVersion, p.Kind = GroupVersion.String(), KindRateLimitPolicy
		p.Namespace, p.Name = s.Metadata.Namespace, s.Metadata.Name
		st.Set.RateLimits = append(st.Set.RateLimits, p)
		errs = staticErr(errs, fmt.Sprintf("rateLimits[%d] (%s)", i, p.Key()), typeErr(s.APIVersion, s.Kind, KindRateLimitPolicy))
	}
	statuses, err := NewTable(LimiterConfig{}).Update(st.Set, nil)
	if err != nil {
		errs = append(errs, err)
	}
	for i, s := range statuses {
		where := fmt.Sprintf("policies[%d] (%s)", i, s.Key)
		if i >= len(f.Policies) {
			where = fmt.Sprintf("rateLimits[%d] (%s)", i-len(f.Policies), s.Key)
		}
		errs = staticErr(errs, where, s.Err)
	}
	if len(errs) > 0 {
		return nil, joined(errs)
	}
	return st, nil
}

func staticErr(errs []error, where string, err error) []error {
	if err == nil {
		return errs
	}
	return append(errs, fmt.Errorf("%s: %w", where, err))
}

// typeErr checks a static policy's optional apiVersion and kind.
func typeErr(apiVersion, kind, want string) error {
	if apiVersion != "" && apiVersion != GroupVersion.String() {
		return fmt.Errorf("apiVersion: %q is not supported, want %s (or leave it out)", apiVersion, GroupVersion)
	}
	if kind != "" && kind != want {
		return fmt.Errorf("kind: %q in a list of %ss (or leave it out)", kind, want)
	}
	return nil
}

// policyLabel adds a policy's namespace/name to its path in decoding
// errors.
func policyLabel(field string, n *yaml.Node) string {
	if (field != "policies" && field != "rateLimits") || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "metadata" || n.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		var ns, name string
		md := n.Content[i+1]
		for j := 0; j+1 < len(md.Content); j += 2 {
			switch md.Content[j].Value {
			case "namespace":
				ns = md.Content[j+1].Value
			case "name":
				name = md.Content[j+1].Value
			}
		}
		return fmt.Sprintf(" (%s/%s)", ns, name)
	}
	return ""
}

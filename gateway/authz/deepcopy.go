package authz

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The DeepCopy functions are written by hand (the repository runs no
// deepcopy-gen); TestDeepCopy checks that copies share no memory.

// DeepCopyInto copies p into out.
func (p *AuthorizationPolicy) DeepCopyInto(out *AuthorizationPolicy) {
	*out = *p
	out.TypeMeta = p.TypeMeta
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	p.Spec.DeepCopyInto(&out.Spec)
	p.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of p.
func (p *AuthorizationPolicy) DeepCopy() *AuthorizationPolicy {
	if p == nil {
		return nil
	}
	out := new(AuthorizationPolicy)
	p.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (p *AuthorizationPolicy) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *AuthorizationPolicySpec) DeepCopyInto(out *AuthorizationPolicySpec) {
	*out = *s
	out.Ports = slices.Clone(s.Ports)
	if s.Rules != nil {
		out.Rules = make([]Rule, len(s.Rules))
		for i, r := range s.Rules {
			out.Rules[i].From = slices.Clone(r.From)
			if r.To != nil {
				out.Rules[i].To = make([]Operation, len(r.To))
				for j, o := range r.To {
					out.Rules[i].To[j] = Operation{Methods: slices.Clone(o.Methods), Paths: slices.Clone(o.Paths)}
				}
			}
		}
	}
}

// DeepCopyInto copies s into out.
func (s *PolicyStatus) DeepCopyInto(out *PolicyStatus) {
	*out = *s
	if s.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(s.Conditions))
		for i := range s.Conditions {
			s.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies l into out.
func (l *AuthorizationPolicyList) DeepCopyInto(out *AuthorizationPolicyList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]AuthorizationPolicy, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *AuthorizationPolicyList) DeepCopy() *AuthorizationPolicyList {
	if l == nil {
		return nil
	}
	out := new(AuthorizationPolicyList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *AuthorizationPolicyList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

// DeepCopyInto copies p into out.
func (p *RateLimitPolicy) DeepCopyInto(out *RateLimitPolicy) {
	*out = *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec.Ports = slices.Clone(p.Spec.Ports)
	p.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of p.
func (p *RateLimitPolicy) DeepCopy() *RateLimitPolicy {
	if p == nil {
		return nil
	}
	out := new(RateLimitPolicy)
	p.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (p *RateLimitPolicy) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopyInto copies l into out.
func (l *RateLimitPolicyList) DeepCopyInto(out *RateLimitPolicyList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]RateLimitPolicy, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *RateLimitPolicyList) DeepCopy() *RateLimitPolicyList {
	if l == nil {
		return nil
	}
	out := new(RateLimitPolicyList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *RateLimitPolicyList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

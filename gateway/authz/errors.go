package authz

import (
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	// ErrInvalidPrincipal is wrapped by every error about a malformed
	// principal (a SPIFFE ID that is not a Causeway workload identity).
	ErrInvalidPrincipal = errors.New("authz: invalid principal")
	// ErrForeignTrustDomain is wrapped by AcceptClaim's error when the
	// claimed identity is in another trust domain than the authenticated
	// peer: the peer claims a workload it cannot vouch for.
	ErrForeignTrustDomain = errors.New("authz: claimed identity outside the peer's trust domain")
)

// Reason is a status condition reason.
type Reason string

// Reasons of the Accepted condition.
const (
	// ReasonAccepted: the policy is valid and enforced.
	ReasonAccepted Reason = "Accepted"
	// ReasonInvalid: a field is invalid; the policy is not enforced (its
	// last valid version, if any, is).
	ReasonInvalid Reason = "Invalid"
	// ReasonDuplicate: another object of the same kind has the same
	// namespace/name in the same update (static files only).
	ReasonDuplicate Reason = "Duplicate"
)

// Reasons of the ResolvedRefs condition. A reference that does not resolve
// does not stop a policy from being enforced: a policy written before its
// service is exported must protect the service from its first flow.
const (
	// ReasonResolvedRefs: the service and every port named exist.
	ReasonResolvedRefs Reason = "ResolvedRefs"
	// ReasonServiceNotFound: the cluster exports no such service (yet).
	ReasonServiceNotFound Reason = "ServiceNotFound"
	// ReasonPortNotFound: the exported service has no such port (yet).
	ReasonPortNotFound Reason = "PortNotFound"
)

// Condition types set on policy status.
const (
	ConditionAccepted     = "Accepted"
	ConditionResolvedRefs = "ResolvedRefs"
)

// IsRef reports whether r is a ResolvedRefs reason (a warning: the policy
// is still enforced).
func (r Reason) IsRef() bool { return r == ReasonServiceNotFound || r == ReasonPortNotFound }

// FieldError is one problem with one field of a policy or file.
type FieldError struct {
	// Field is the path of the field, e.g. "spec.rules[0].from[1].namespace".
	Field string
	// Reason is the condition reason the problem maps to.
	Reason Reason
	// Detail says what is wrong and what is wanted.
	Detail string
	// Err is the underlying error, if any (e.g. one wrapping
	// ErrInvalidPrincipal).
	Err error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr is an Invalid error about field.
func fieldErr(field, format string, args ...any) *FieldError {
	err := fmt.Errorf(format, args...)
	return &FieldError{Field: field, Reason: ReasonInvalid, Detail: err.Error(), Err: errors.Unwrap(err)}
}

// refErr is a ResolvedRefs warning about field.
func refErr(field string, reason Reason, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// PolicyError lists everything wrong with one policy (of either kind).
// Callers check for it with errors.As.
type PolicyError struct {
	// Kind is KindAuthorizationPolicy or KindRateLimitPolicy.
	Kind   string
	Policy PolicyKey
	Fields []*FieldError
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return fmt.Sprintf("invalid %s %s: %s", e.Kind, e.Policy, strings.Join(msgs, "; "))
}

// Unwrap returns the field errors.
func (e *PolicyError) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

// Invalid reports whether any problem makes the policy invalid (as
// opposed to only references that do not resolve yet).
func (e *PolicyError) Invalid() bool {
	for _, f := range e.Fields {
		if !f.Reason.IsRef() {
			return true
		}
	}
	return false
}

// split returns the messages of e's invalid and reference problems and the
// first reason of each.
func (e *PolicyError) split() (invalid, refs []string, invalidReason, refReason Reason) {
	for _, f := range e.Fields {
		if f.Reason.IsRef() {
			refs = append(refs, f.Error())
			if refReason == "" {
				refReason = f.Reason
			}
			continue
		}
		invalid = append(invalid, f.Error())
		if invalidReason == "" {
			invalidReason = f.Reason
		}
	}
	return invalid, refs, invalidReason, refReason
}

// Conditions returns the Accepted and ResolvedRefs conditions of a policy
// whose validation returned err (nil: valid, all references resolve). The
// caller sets ObservedGeneration and LastTransitionTime
// (meta.SetStatusCondition does the latter).
func Conditions(err error) []metav1.Condition {
	accepted := metav1.Condition{Type: ConditionAccepted, Status: metav1.ConditionTrue,
		Reason: string(ReasonAccepted), Message: "Accepted and enforced"}
	resolved := metav1.Condition{Type: ConditionResolvedRefs, Status: metav1.ConditionTrue,
		Reason: string(ReasonResolvedRefs), Message: "The service and ports exist"}
	if err == nil {
		return []metav1.Condition{accepted, resolved}
	}
	var pe *PolicyError
	if !errors.As(err, &pe) || len(pe.Fields) == 0 {
		accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, string(ReasonInvalid), err.Error()
		return []metav1.Condition{accepted, resolved}
	}
	invalid, refs, invalidReason, refReason := pe.split()
	if len(invalid) > 0 {
		accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, string(invalidReason), strings.Join(invalid, "; ")
	}
	if len(refs) > 0 {
		resolved.Status, resolved.Reason = metav1.ConditionFalse, string(refReason)
		resolved.Message = strings.Join(refs, "; ") + " (the policy is enforced all the same)"
	}
	return []metav1.Condition{accepted, resolved}
}

// joined is errors.Join with "; " between the messages.
type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, e := range j {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }

package l7route

import (
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var (
	// ErrNoRoute is returned by Select when routes are attached to the
	// addressed service but none matches the request: answer 404.
	ErrNoRoute = errors.New("l7route: no route rule matches the request")
	// ErrNoBackend is returned by Select when the selected rule has no
	// backend to send to (none listed, or every weight zero): answer 500.
	ErrNoBackend = errors.New("l7route: the selected rule has no backend with a weight")
	// ErrBadRegex is wrapped by errors about a regular expression that
	// does not compile.
	ErrBadRegex = errors.New("invalid regular expression")
)

// Reason is the Gateway API condition reason an error maps to.
type Reason string

// Reasons of the Accepted condition (the route is not programmed).
const (
	ReasonUnsupportedValue    = Reason(gatewayv1.RouteReasonUnsupportedValue)
	ReasonNoMatchingParent    = Reason(gatewayv1.RouteReasonNoMatchingParent)
	ReasonIncompatibleFilters = Reason(gatewayv1.RouteReasonIncompatibleFilters)
)

// Reasons of the ResolvedRefs condition (a reference does not resolve).
const (
	ReasonBackendNotFound = Reason(gatewayv1.RouteReasonBackendNotFound)
	ReasonInvalidKind     = Reason(gatewayv1.RouteReasonInvalidKind)
	ReasonRefNotPermitted = Reason(gatewayv1.RouteReasonRefNotPermitted)
)

// IsRef reports whether r is a ResolvedRefs reason.
func (r Reason) IsRef() bool {
	return r == ReasonBackendNotFound || r == ReasonInvalidKind || r == ReasonRefNotPermitted
}

// FieldError is one problem with one field of a route.
type FieldError struct {
	// Field is the path of the field in the Gateway API object, e.g.
	// "spec.rules[0].backendRefs[1].weight".
	Field string
	// Reason is the condition reason the problem maps to.
	Reason Reason
	// Detail says what is wrong and what is wanted.
	Detail string
	// Err is the underlying error, if any (e.g. a regexp error).
	Err error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

func (e *FieldError) Unwrap() error { return e.Err }

// under returns e with its field prefixed by parent.
func (e *FieldError) under(parent string) *FieldError {
	c := *e
	switch {
	case c.Field == "":
		c.Field = parent
	case strings.HasPrefix(c.Field, "["):
		c.Field = parent + c.Field
	default:
		c.Field = parent + "." + c.Field
	}
	return &c
}

func fieldErr(field string, reason Reason, format string, args ...any) *FieldError {
	err := fmt.Errorf(format, args...)
	return &FieldError{Field: field, Reason: reason, Detail: err.Error(), Err: errors.Unwrap(err)}
}

// invalid is an UnsupportedValue error about field that wraps err.
func invalid(field string, err error) *FieldError {
	return &FieldError{Field: field, Reason: ReasonUnsupportedValue, Detail: err.Error(), Err: err}
}

// unsupported is an UnsupportedValue error for a value outside want.
func unsupported[T ~string](field, got string, want ...T) *FieldError {
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = string(w)
	}
	return fieldErr(field, ReasonUnsupportedValue, "unsupported value %q, want one of %s", got, strings.Join(ws, ", "))
}

// RouteError lists everything wrong with one route. Callers check for it
// with errors.As.
type RouteError struct {
	Route  RouteKey
	Fields []*FieldError
}

func (e *RouteError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return fmt.Sprintf("invalid %s: %s", e.Route, strings.Join(msgs, "; "))
}

// Unwrap returns the field errors.
func (e *RouteError) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

// Conditions returns the Accepted and ResolvedRefs conditions of a route
// whose validation returned err (nil: valid). Causeway does not program a
// route whose references do not resolve, so such a route is also
// Accepted=False, with the reference's reason. The caller sets
// ObservedGeneration and LastTransitionTime (meta.SetStatusCondition does
// the latter).
func Conditions(err error) []metav1.Condition {
	accepted := metav1.Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue,
		Reason: string(gatewayv1.RouteReasonAccepted), Message: "Accepted"}
	resolved := metav1.Condition{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: metav1.ConditionTrue,
		Reason: string(gatewayv1.RouteReasonResolvedRefs), Message: "All references resolved"}
	if err == nil {
		return []metav1.Condition{accepted, resolved}
	}
	var re *RouteError
	if !errors.As(err, &re) || len(re.Fields) == 0 {
		accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, string(ReasonUnsupportedValue), err.Error()
		return []metav1.Condition{accepted, resolved}
	}
	var acceptReason, refReason Reason
	var all, refs []string
	for _, f := range re.Fields {
		all = append(all, f.Error())
		if f.Reason.IsRef() {
			refs = append(refs, f.Error())
			if refReason == "" {
				refReason = f.Reason
			}
		} else if acceptReason == "" {
			acceptReason = f.Reason
		}
	}
	if acceptReason == "" {
		acceptReason = refReason
	}
	accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, string(acceptReason), strings.Join(all, "; ")
	if refReason != "" {
		resolved.Status, resolved.Reason, resolved.Message = metav1.ConditionFalse, string(refReason), strings.Join(refs, "; ")
	}
	return []metav1.Condition{accepted, resolved}
}

// joinErrors is errors.Join with "; " between the messages.
func joinErrors(errs []error) error { return joined(errs) }

type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, e := range j {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }

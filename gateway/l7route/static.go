package l7route

import (
	"errors"
	"fmt"

	"github.com/causeway-mesh/causeway/internal/lib/configfile"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// StaticVersion is the static routes format version this build reads.
const StaticVersion = 1

// StaticFile is the static (non-Kubernetes) routes file: the routes are
// HTTPRoute and GRPCRoute objects as Kubernetes takes them, without status,
// so a route can move between the two modes unchanged.
type StaticFile struct {
	// Version must be 1.
	Version    int               `json:"version"`
	HTTPRoutes []StaticHTTPRoute `json:"httpRoutes,omitempty"`
	GRPCRoutes []StaticGRPCRoute `json:"grpcRoutes,omitempty"`
}

// StaticMeta is the part of a route's metadata the static format takes.
type StaticMeta struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// StaticHTTPRoute is one HTTPRoute. APIVersion and Kind are optional; if
// given they must be gateway.networking.k8s.io/v1 and HTTPRoute.
type StaticHTTPRoute struct {
	APIVersion string                  `json:"apiVersion,omitempty"`
	Kind       string                  `json:"kind,omitempty"`
	Metadata   StaticMeta              `json:"metadata"`
	Spec       gatewayv1.HTTPRouteSpec `json:"spec"`
}

// StaticGRPCRoute is one GRPCRoute. APIVersion and Kind are optional; if
// given they must be gateway.networking.k8s.io/v1 and GRPCRoute.
type StaticGRPCRoute struct {
	APIVersion string                  `json:"apiVersion,omitempty"`
	Kind       string                  `json:"kind,omitempty"`
	Metadata   StaticMeta              `json:"metadata"`
	Spec       gatewayv1.GRPCRouteSpec `json:"spec"`
}

// ParseStatic decodes a static routes file strictly (an unknown field is an
// error naming it) and converts and validates every route as FromHTTPRoute
// and FromGRPCRoute do, without reference checks (the catalog is not known
// at load time: Table.Update checks references). It fails on the first
// decoding error, or lists every invalid route, each error naming the route
// and the field (`httpRoutes[1]: invalid HTTPRoute shop/cart:
// spec.rules[0].backendRefs[0].weight: ...`). Static routes have no
// creation time: routes whose matches tie are ordered by namespace/name.
func ParseStatic(data []byte) ([]*Route, error) {
	var f StaticFile
	if err := configfile.Decode(data, &f, configfile.Options{Label: routeLabel}); err != nil {
		return nil, err
	}
	switch f.Version {
	case StaticVersion:
	case 0:
		return nil, fmt.Errorf("version: required (this build reads version %d)", StaticVersion)
	default:
		return nil, fmt.Errorf("version: %d is not supported, want %d", f.Version, StaticVersion)
	}
	var routes []*Route
	var errs []error
	seen := map[RouteKey]string{}
	add := func(where string, r *Route, err error) {
		if other, dup := seen[r.Key()]; dup && err == nil {
			err = fmt.Errorf("%s is also %s", r.Key(), other)
		}
		seen[r.Key()] = where
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			return
		}
		routes = append(routes, r)
	}
	for i, s := range f.HTTPRoutes {
		where := fmt.Sprintf("httpRoutes[%d]", i)
		r, err := FromHTTPRoute(&gatewayv1.HTTPRoute{ObjectMeta: s.Metadata.objectMeta(), Spec: s.Spec})
		add(where, r, errors.Join(typeErr(s.APIVersion, s.Kind, KindHTTP), err))
	}
	for i, s := range f.GRPCRoutes {
		where := fmt.Sprintf("grpcRoutes[%d]", i)
		r, err := FromGRPCRoute(&gatewayv1.GRPCRoute{ObjectMeta: s.Metadata.objectMeta(), Spec: s.Spec})
		add(where, r, errors.Join(typeErr(s.APIVersion, s.Kind, KindGRPC), err))
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return routes, nil
}

func (m StaticMeta) objectMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name, Annotations: m.Annotations}
}

// typeErr checks a static route's optional apiVersion and kind.
func typeErr(apiVersion, kind string, want Kind) error {
	wantAPI := gatewayv1.GroupVersion.String()
	if apiVersion != "" && apiVersion != wantAPI {
		return fmt.Errorf("apiVersion: %q is not supported, want %s (or leave it out)", apiVersion, wantAPI)
	}
	if kind != "" && kind != string(want) {
		return fmt.Errorf("kind: %q in a list of %ss (or leave it out)", kind, want)
	}
	return nil
}

// routeLabel adds a route's namespace/name to its path in decoding errors.
func routeLabel(field string, n *yaml.Node) string {
	if (field != "httpRoutes" && field != "grpcRoutes") || n.Kind != yaml.MappingNode {
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

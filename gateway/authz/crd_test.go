package authz

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/causeway-mesh/causeway/deploy/crds"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// crdSchema returns the openAPIV3Schema of a CRD file.
func crdSchema(t *testing.T, file []byte) map[string]any {
	t.Helper()
	var crd map[string]any
	require.NoError(t, yaml.Unmarshal(file, &crd))
	versions := crd["spec"].(map[string]any)["versions"].([]any)
	require.Len(t, versions, 1)
	v := versions[0].(map[string]any)
	require.Equal(t, Version, v["name"])
	return v["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
}

var (
	durationType = reflect.TypeFor[metav1.Duration]()
	timeType     = reflect.TypeFor[metav1.Time]()
	metaType     = reflect.TypeFor[metav1.ObjectMeta]()
)

// checkSchema fails t where schema s and Go type typ differ in fields or
// JSON types.
func checkSchema(t *testing.T, path string, s map[string]any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := ""
	switch {
	case typ == durationType, typ == timeType, typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Int32, typ.Kind() == reflect.Int64:
		want = "integer"
	case typ.Kind() == reflect.Slice:
		want = "array"
		require.Contains(t, s, "items", path)
		checkSchema(t, path+"[]", s["items"].(map[string]any), typ.Elem())
	case typ.Kind() == reflect.Struct:
		want = "object"
		if typ != metaType {
			checkProperties(t, path, s, typ)
		}
	default:
		t.Fatalf("%s: no JSON type for %s", path, typ)
	}
	require.Equal(t, want, s["type"], "%s: type", path)
}

func checkProperties(t *testing.T, path string, s map[string]any, typ reflect.Type) {
	t.Helper()
	props, _ := s["properties"].(map[string]any)
	fields := jsonFields(typ)
	var inSchema, inGo []string
	for name := range props {
		inSchema = append(inSchema, name)
	}
	for name := range fields {
		inGo = append(inGo, name)
	}
	slices.Sort(inSchema)
	slices.Sort(inGo)
	require.Equal(t, inGo, inSchema, "%s: properties", path)
	for name, ft := range fields {
		checkSchema(t, path+"."+name, props[name].(map[string]any), ft)
	}
}

// jsonFields maps the JSON names of typ's fields to their types, inline
// structs flattened.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && (name == "" || opts == "inline") && name != "metadata" {
			for n, ft := range jsonFields(f.Type) {
				out[n] = ft
			}
			continue
		}
		out[name] = f.Type
	}
	return out
}

// TestCRDSchemaMatchesGoTypes keeps the hand-written CRDs in step with
// the Go types: the same fields, the same JSON types, all the way down.
func TestCRDSchemaMatchesGoTypes(t *testing.T) {
	checkSchema(t, KindAuthorizationPolicy, crdSchema(t, crds.AuthorizationPolicy), reflect.TypeFor[AuthorizationPolicy]())
	checkSchema(t, KindRateLimitPolicy, crdSchema(t, crds.RateLimitPolicy), reflect.TypeFor[RateLimitPolicy]())
}

func TestDeepCopy(t *testing.T) {
	p := policy("p", "cart", ActionAllow, from(src("north", "web", "*")).to([]string{"GET"}, "/a"))
	p.Spec.Ports = []int32{8080}
	p.Labels = map[string]string{"a": "b"}
	p.Status.Conditions = Conditions(nil)
	c := p.DeepCopyObject().(*AuthorizationPolicy)
	require.Equal(t, p, c)
	c.Spec.Ports[0] = 1
	c.Spec.Rules[0].From[0].Cluster = "x"
	c.Spec.Rules[0].To[0].Methods[0] = "POST"
	c.Spec.Rules[0].To[0].Paths[0] = "/b"
	c.Labels["a"] = "c"
	c.Status.Conditions[0].Reason = "x"
	require.Equal(t, policy("p", "cart", ActionAllow, from(src("north", "web", "*")).to([]string{"GET"}, "/a")).Spec.Rules, p.Spec.Rules)
	require.Equal(t, []int32{8080}, p.Spec.Ports)
	require.Equal(t, "b", p.Labels["a"])
	require.Equal(t, string(ReasonAccepted), p.Status.Conditions[0].Reason)

	l := &AuthorizationPolicyList{Items: []AuthorizationPolicy{*p}}
	lc := l.DeepCopyObject().(*AuthorizationPolicyList)
	lc.Items[0].Spec.Ports[0] = 2
	require.Equal(t, int32(8080), l.Items[0].Spec.Ports[0])

	r := rateLimit("r", "cart", KeyCluster, 1, 2, 8080)
	rc := r.DeepCopyObject().(*RateLimitPolicy)
	require.Equal(t, r, rc)
	rc.Spec.Ports[0] = 1
	require.Equal(t, int32(8080), r.Spec.Ports[0])
	rl := (&RateLimitPolicyList{Items: []RateLimitPolicy{*r}}).DeepCopyObject().(*RateLimitPolicyList)
	require.Len(t, rl.Items, 1)
	require.Nil(t, (*AuthorizationPolicy)(nil).DeepCopy())
}

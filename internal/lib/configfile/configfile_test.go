package configfile

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type inner struct {
	Port  uint16            `json:"port" want:"a port number 1-65535"`
	Flags map[string]bool   `json:"flags,omitempty"`
	Wait  metav1.Duration   `json:"wait,omitempty"`
	Ptr   *int              `json:"ptr,omitempty"`
	Tags  map[string]uint32 `json:"tags,omitempty"`
}

type Base struct {
	Cluster string `json:"cluster"`
}

type doc struct {
	Base  `json:",inline"`
	Items []inner `json:"items"`
	Count int     `json:"count,omitempty"`
}

func TestDecode(t *testing.T) {
	var d doc
	require.NoError(t, Decode([]byte("cluster: east\ncount: 3\nitems:\n- {port: 80, wait: 2s, ptr: 4, flags: {a: true}}\n- port: 81\n"), &d, Options{}))
	require.Equal(t, "east", d.Cluster)
	require.Equal(t, 3, d.Count)
	require.Len(t, d.Items, 2)
	require.Equal(t, uint16(80), d.Items[0].Port)
	require.Equal(t, 2*time.Second, d.Items[0].Wait.Duration)
	require.Equal(t, 4, *d.Items[0].Ptr)
	require.True(t, d.Items[0].Flags["a"])

	var empty doc
	require.NoError(t, Decode(nil, &empty, Options{}))
	require.Equal(t, doc{}, empty)

	label := func(field string, _ *yaml.Node) string { return " (" + field + ")" }
	for _, tc := range []struct{ name, in, want string }{
		{"syntax", "items: [", "line 1: did not find expected node content"},
		{"scalar document", "hello", `line 1: want a mapping of field: value, got "hello"`},
		{"unknown", "clustr: a", `line 1: unknown field "clustr" (did you mean cluster?)`},
		{"unknown far", "zzzzzz: a", `line 1: unknown field "zzzzzz"`},
		{"twice", "cluster: a\ncluster: b", "line 2: cluster: given twice (lines 1 and 2)"},
		{"port word", "items:\n- port: eighty", `line 2: items[0] (items).port: want a port number 1-65535, got "eighty"`},
		{"port too big", "items:\n- port: 70000", "line 2: items[0] (items).port: want a port number 1-65535, got 70000"},
		{"count float", "count: 1.5", "line 1: count: want a whole number, got 1.5"},
		{"duration number", "items: [{wait: 10}]", "line 1: items[0] (items).wait: want a duration with a unit, like 10s, got 10"},
		{"duration bad", "items: [{wait: 10x}]", `line 1: items[0] (items).wait: want a duration like 10s (units ms, s, m, h), got "10x"`},
		{"bool", "items: [{flags: {a: maybe}}]", `line 1: items[0] (items).flags[a]: want true or false, got "maybe"`},
		{"list wanted", "items: {port: 1}", "line 1: items: want a list, got a mapping"},
		{"string wanted", "cluster: [a]", "line 1: cluster: want a string, got a list"},
		{"map value", "items: [{tags: {x: -1}}]", "line 1: items[0] (items).tags[x]: want a whole number, 0 or more, got -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tc.in), &d, Options{Label: label})
			require.Error(t, err)
			var fe *Error
			require.True(t, errors.As(err, &fe))
			require.Equal(t, tc.want, err.Error())
		})
	}
}

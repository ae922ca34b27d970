package configfile

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Error is a decoding error at one place of the document.
type Error struct {
	// Path is the YAML path of the field, e.g. "limits.headerTimeout";
	// empty for the document itself.
	Path string
	// Line is the 1-based line of the offending node; 0 if unknown.
	Line int
	// Msg says what is wrong and what is wanted.
	Msg string
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: %s", e.Line, s)
	}
	return s
}

// Options adjust Decode.
type Options struct {
	// Label, if set, is called for every element of a list with the
	// list's field name and the element's node; what it returns is added
	// to the element's path (e.g. " (demo/echo)" after "services[2]").
	Label func(field string, n *yaml.Node) string
}

var durationType = reflect.TypeOf(metav1.Duration{})

// Decode decodes the YAML document data into the struct into points to.
// An empty document leaves it unchanged. Errors are *Error.
func Decode(data []byte, into any, opts Options) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil
	}
	v := reflect.ValueOf(into)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return errors.New("configfile: decode into a non-nil pointer")
	}
	d := decoder{opts: opts}
	return d.value(doc.Content[0], v.Elem(), "", "", "")
}

type decoder struct{ opts Options }

// value decodes n into v. path is where n is, field the name of the
// field it belongs to (for Label) and want the field's `want` tag.
func (d decoder) value(n *yaml.Node, v reflect.Value, path, field, want string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if v.Type() == durationType {
		return d.duration(n, v, path, want)
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		if err := d.value(n, e.Elem(), path, field, want); err != nil {
			return err
		}
		v.Set(e)
		return nil
	case reflect.Struct:
		return d.structure(n, v, path)
	case reflect.Slice:
		return d.list(n, v, path, field, want)
	case reflect.Map:
		return d.mapping(n, v, path, want)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return mismatch(n, path, orDefault(want, "a string"))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil || n.Tag == "!!str" {
			return mismatch(n, path, orDefault(want, "true or false"))
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || err != nil {
			return mismatch(n, path, orDefault(want, "a whole number"))
		}
		v.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || err != nil {
			return mismatch(n, path, orDefault(want, "a whole number, 0 or more"))
		}
		v.SetUint(u)
		return nil
	}
	return &Error{Path: path, Line: n.Line, Msg: "this field cannot be set from a file"}
}

func (d decoder) duration(n *yaml.Node, v reflect.Value, path, want string) error {
	if n.Kind != yaml.ScalarNode {
		return mismatch(n, path, orDefault(want, "a duration like 10s"))
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("want a duration with a unit, like %ss, got %s", n.Value, n.Value)}
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		return mismatch(n, path, orDefault(want, "a duration like 10s (units ms, s, m, h)"))
	}
	v.Set(reflect.ValueOf(metav1.Duration{Duration: dur}))
	return nil
}

func (d decoder) structure(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return mismatch(n, path, "a mapping of field: value")
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		if line, dup := seen[name]; dup {
			return &Error{Path: join(path, name), Line: k.Line, Msg: fmt.Sprintf("given twice (lines %d and %d)", line, k.Line)}
		}
		seen[name] = k.Line
		f, ok := fields[name]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", name)
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return &Error{Path: path, Line: k.Line, Msg: msg}
		}
		if err := d.value(val, v.FieldByIndex(f.index), join(path, name), name, f.want); err != nil {
			return err
		}
	}
	return nil
}

func (d decoder) list(n *yaml.Node, v reflect.Value, path, field, want string) error {
	if n.Kind != yaml.SequenceNode {
		return mismatch(n, path, "a list")
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if d.opts.Label != nil {
			p += d.opts.Label(field, e)
		}
		if err := d.value(e, s.Index(i), p, field, want); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func (d decoder) mapping(n *yaml.Node, v reflect.Value, path, want string) error {
	if n.Kind != yaml.MappingNode {
		return mismatch(n, path, "a mapping")
	}
	if v.Type().Key().Kind() != reflect.String {
		return &Error{Path: path, Line: n.Line, Msg: "this field cannot be set from a file"}
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := fmt.Sprintf("%s[%s]", path, k.Value)
		if k.Kind != yaml.ScalarNode {
			return mismatch(k, path+" key", "a string")
		}
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		if m.MapIndex(key).IsValid() {
			return &Error{Path: p, Line: k.Line, Msg: "given twice"}
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if err := d.value(val, e, p, "", want); err != nil {
			return err
		}
		m.SetMapIndex(key, e)
	}
	v.Set(m)
	return nil
}

type fieldInfo struct {
	index []int
	want  string
}

// fieldsOf maps the YAML names of t's fields (json tags, inline embedded
// structs flattened) to their indexes.
func fieldsOf(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, sub := range fieldsOf(f.Type) {
				out[n] = fieldInfo{index: append([]int{i}, sub.index...), want: sub.want}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = fieldInfo{index: []int{i}, want: f.Tag.Get("want")}
	}
	return out
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func orDefault(want, def string) string {
	if want != "" {
		return want
	}
	return def
}

// mismatch is "want W, got G" for n.
func mismatch(n *yaml.Node, path, want string) *Error {
	return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("want %s, got %s", want, Describe(n))}
}

// Describe is how n reads in an error: a quoted string, a bare number or
// boolean, "a list" or "a mapping".
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "nothing"
}

// suggest returns the known field closest to name, if close enough to be
// a likely typo.
func suggest(name string, fields map[string]fieldInfo) string {
	best, bestD := "", 3
	for f := range fields {
		d := distance(strings.ToLower(name), strings.ToLower(f))
		if d < bestD || (d == bestD && best != "" && f < best) {
			best, bestD = f, d
		}
	}
	if bestD > len(name)/2 {
		return ""
	}
	return best
}

// distance is the Levenshtein distance of a and b (bytes).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

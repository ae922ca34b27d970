package l7route

import "net/http"

// Apply edits h: Set replaces, Add appends, Remove deletes, in that order.
// A nil modifier changes nothing.
func (m *HeaderModifier) Apply(h http.Header) {
	if m == nil {
		return
	}
	for _, s := range m.Set {
		h.Set(s.Name, s.Value)
	}
	for _, a := range m.Add {
		h.Add(a.Name, a.Value)
	}
	for _, r := range m.Remove {
		h.Del(r)
	}
}

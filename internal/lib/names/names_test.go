package names

import (
	"strings"
	"testing"
)

func TestIsDNSLabel(t *testing.T) {
	for s, want := range map[string]bool{
		"east": true, "a": true, "a-1": true, "0x": true, strings.Repeat("a", 63): true,
		"": false, "East": false, "-a": false, "a-": false, "a.b": false, "a_b": false, strings.Repeat("a", 64): false,
	} {
		if got := IsDNSLabel(s); got != want {
			t.Errorf("IsDNSLabel(%q) = %v, want %v", s, got, want)
		}
	}
}

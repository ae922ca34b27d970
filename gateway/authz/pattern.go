package authz

import (
	"fmt"
	"strings"
)

// patternKind is how a pattern compares.
type patternKind uint8

const (
	matchAny patternKind = iota
	matchExact
	matchPrefix
	matchSuffix
)

// pattern is a compiled Source field or path: "*", "prefix*", "*suffix" or
// an exact value.
type pattern struct {
	kind patternKind
	s    string
}

// compilePattern compiles a validated pattern; "" (an omitted field) and
// "*" match anything.
func compilePattern(s string) pattern {
	switch {
	case s == "" || s == "*":
		return pattern{kind: matchAny}
	case strings.HasSuffix(s, "*"):
		return pattern{kind: matchPrefix, s: s[:len(s)-1]}
	case strings.HasPrefix(s, "*"):
		return pattern{kind: matchSuffix, s: s[1:]}
	}
	return pattern{kind: matchExact, s: s}
}

func (p pattern) match(v string) bool {
	switch p.kind {
	case matchAny:
		return true
	case matchExact:
		return v == p.s
	case matchPrefix:
		return strings.HasPrefix(v, p.s)
	default:
		return strings.HasSuffix(v, p.s)
	}
}

func (p pattern) String() string {
	switch p.kind {
	case matchAny:
		return "*"
	case matchPrefix:
		return p.s + "*"
	case matchSuffix:
		return "*" + p.s
	}
	return p.s
}

// checkPattern validates a name pattern: "*", a name fragment followed or
// preceded by one "*", or a whole name (isName). chars reports the bytes a
// name may hold.
func checkPattern(s, what string, isName func(string) bool, chars func(byte) bool) error {
	if s == "*" {
		return nil
	}
	if len(s) > maxSubdomain+1 {
		return fmt.Errorf("longer than %d bytes", maxSubdomain+1)
	}
	lit := s
	switch {
	case strings.HasSuffix(s, "*"):
		lit = s[:len(s)-1]
	case strings.HasPrefix(s, "*"):
		lit = s[1:]
	}
	if strings.Contains(lit, "*") {
		return fmt.Errorf("%q: '*' is allowed only alone, first or last", s)
	}
	if lit == s {
		if !isName(s) {
			return fmt.Errorf("%q is not %s", s, what)
		}
		return nil
	}
	for i := 0; i < len(lit); i++ {
		if !chars(lit[i]) {
			return fmt.Errorf("%q: %q cannot be part of %s", s, lit[i], what)
		}
	}
	return nil
}

// isLabelChar reports whether c may be part of an RFC 1123 label.
func isLabelChar(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' }

// isSubdomainChar reports whether c may be part of an RFC 1123 subdomain.
func isSubdomainChar(c byte) bool { return isLabelChar(c) || c == '.' }

// checkPath validates a path pattern: "*", "/exact", "/prefix*" or
// "*suffix".
func checkPath(s string) error {
	if s == "*" {
		return nil
	}
	if len(s) > maxPathLen {
		return fmt.Errorf("longer than %d bytes", maxPathLen)
	}
	lit := strings.TrimSuffix(s, "*")
	suffix := false
	if lit == s && strings.HasPrefix(s, "*") {
		lit, suffix = s[1:], true
	}
	switch {
	case lit == "":
		return fmt.Errorf("%q: empty path", s)
	case strings.Contains(lit, "*"):
		return fmt.Errorf("%q: '*' is allowed only alone, first or last", s)
	case !suffix && lit[0] != '/':
		return fmt.Errorf("%q must begin with '/' (or '*' for a suffix match)", s)
	case strings.ContainsAny(lit, "?#"):
		return fmt.Errorf("%q must not contain '?' or '#': paths are matched without the query", s)
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] <= ' ' || lit[i] == 0x7f {
			return fmt.Errorf("%q: control character or space at byte %d", s, i)
		}
	}
	return nil
}

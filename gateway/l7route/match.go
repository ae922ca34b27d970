package l7route

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Request is what selection reads of an HTTP request.
type Request struct {
	Method string
	// Path is the request's URL path, without the query.
	Path string
	// Query are the query parameters; nil if there are none.
	Query url.Values
	// Header are the request headers, keys in canonical form as net/http
	// keeps them.
	Header http.Header
}

// RequestOf returns the parts of r that selection reads.
func RequestOf(r *http.Request) Request {
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header}
	if r.URL.RawQuery != "" {
		req.Query = r.URL.Query()
	}
	return req
}

// IsGRPC reports whether the request is a gRPC call (content-type
// application/grpc or application/grpc+proto etc.).
func (r *Request) IsGRPC() bool {
	ct := r.Header.Get("Content-Type")
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") || strings.HasPrefix(ct, "application/grpc;")
}

// matcher is a compiled Match.
type matcher struct {
	pathType PathType
	// path is the exact path, or the prefix without its trailing '/'.
	path    string
	pathRE  *regexp.Regexp
	method  string
	headers []valueMatcher
	query   []valueMatcher
}

type valueMatcher struct {
	name  string
	exact string
	re    *regexp.Regexp
}

func (v valueMatcher) matches(val string, ok bool) bool {
	if !ok {
		return false
	}
	if v.re != nil {
		return v.re.MatchString(val)
	}
	return val == v.exact
}

func (m *matcher) matches(req *Request) bool {
	switch m.pathType {
	case PathExact:
		if req.Path != m.path {
			return false
		}
	case PathRegularExpression:
		if !m.pathRE.MatchString(req.Path) {
			return false
		}
	default:
		if m.path != "" && req.Path != m.path && !strings.HasPrefix(req.Path, m.path+"/") {
			return false
		}
	}
	if m.method != "" && req.Method != m.method {
		return false
	}
	for _, h := range m.headers {
		vals, ok := req.Header[h.name]
		if !h.matches(strings.Join(vals, ","), ok) {
			return false
		}
	}
	for _, q := range m.query {
		vals, ok := req.Query[q.name]
		if !ok || len(vals) == 0 {
			return false
		}
		if !q.matches(vals[0], true) {
			return false
		}
	}
	return true
}

// rank orders matches by precedence: compared element by element, the
// larger wins.
type rank [5]int

// Path classes of an HTTP rank, best first.
const (
	classExact  = 3
	classRegex  = 2
	classPrefix = 1
)

// compileHTTP compiles an HTTPRoute match and returns its rank:
// path class, path length, method, header count, query param count.
func compileHTTP(m Match) (*matcher, rank, *FieldError) {
	c := &matcher{pathType: m.Path.Type, method: m.Method}
	var r rank
	switch m.Path.Type {
	case PathExact:
		c.path, r[0] = m.Path.Value, classExact
	case PathRegularExpression:
		re, err := anchored(m.Path.Value)
		if err != nil {
			return nil, r, invalid("path.value", err)
		}
		c.pathRE, r[0] = re, classRegex
	case PathPrefix, "":
		c.pathType = PathPrefix
		c.path, r[0] = strings.TrimSuffix(m.Path.Value, "/"), classPrefix
	default:
		return nil, r, unsupported("path.type", string(m.Path.Type), PathExact, PathPrefix, PathRegularExpression)
	}
	r[1] = len(m.Path.Value)
	if m.Method != "" {
		r[2] = 1
	}
	if err := c.compileValues(m.Headers, m.QueryParams); err != nil {
		return nil, r, err
	}
	r[3], r[4] = len(m.Headers), len(m.QueryParams)
	return c, r, nil
}

// compileGRPC compiles a GRPCRoute match onto the HTTP engine (a gRPC call
// is a POST to /service/method) and returns its rank: service length,
// method length, header count, as GRPCRoute's precedence says.
func compileGRPC(m Match) (*matcher, rank, *FieldError) {
	c := &matcher{pathType: PathPrefix}
	var r rank
	if g := m.GRPC; g != nil {
		if g.Type != "" && g.Type != ValueExact && g.Type != ValueRegularExpression {
			return nil, r, unsupported("method.type", string(g.Type), ValueExact, ValueRegularExpression)
		}
		if err := c.compileGRPCMethod(g); err != nil {
			return nil, r, err
		}
		r[0], r[1] = len(g.Service), len(g.Method)
	}
	if err := c.compileValues(m.Headers, nil); err != nil {
		return nil, r, err
	}
	r[2] = len(m.Headers)
	return c, r, nil
}

func (c *matcher) compileGRPCMethod(g *GRPCMatch) *FieldError {
	if g.Type == ValueRegularExpression {
		svc, method := orAny(g.Service), orAny(g.Method)
		if _, err := anchored(svc); err != nil {
			return invalid("method.service", err)
		}
		if _, err := anchored(method); err != nil {
			return invalid("method.method", err)
		}
		c.pathType, c.pathRE = PathRegularExpression, regexp.MustCompile("^/(?:"+svc+")/(?:"+method+")$")
		return nil
	}
	switch {
	case g.Service != "" && g.Method != "":
		c.pathType, c.path = PathExact, "/"+g.Service+"/"+g.Method
	case g.Service != "":
		c.path = "/" + g.Service
	case g.Method != "":
		c.pathType, c.pathRE = PathRegularExpression, regexp.MustCompile("^/[^/]+/"+regexp.QuoteMeta(g.Method)+"$")
	}
	return nil
}

func orAny(re string) string {
	if re == "" {
		return "[^/]+"
	}
	return re
}

func (c *matcher) compileValues(headers, query []ValueMatch) *FieldError {
	for i, h := range headers {
		v, err := compileValue(h, http.CanonicalHeaderKey(h.Name))
		if err != nil {
			return err.under(fmt.Sprintf("headers[%d]", i))
		}
		c.headers = append(c.headers, v)
	}
	for i, q := range query {
		v, err := compileValue(q, q.Name)
		if err != nil {
			return err.under(fmt.Sprintf("queryParams[%d]", i))
		}
		c.query = append(c.query, v)
	}
	return nil
}

func compileValue(m ValueMatch, name string) (valueMatcher, *FieldError) {
	switch m.Type {
	case ValueExact, "":
		return valueMatcher{name: name, exact: m.Value}, nil
	case ValueRegularExpression:
		re, err := anchored(m.Value)
		if err != nil {
			return valueMatcher{}, invalid("value", err)
		}
		return valueMatcher{name: name, re: re}, nil
	}
	return valueMatcher{}, unsupported("type", string(m.Type), ValueExact, ValueRegularExpression)
}

// anchored compiles an RE2 expression that must match a whole value.
func anchored(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadRegex, expr, err)
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

package match

import (
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// want is what matching a path against one rule path gives: no match, or
// the path forwarded.
type want struct {
	ok  bool
	fwd string
}

// regexpWant is what the regexp package says a rule path does with a path
// (the whole path must match; the groups, concatenated, are forwarded; a
// rule without groups forwards the whole path): the reference the fast
// shapes and the capture machine are held to.
func regexpWant(t *testing.T, expr, path string) want {
	t.Helper()
	re := regexp.MustCompile(`\A(?:` + expr + `)\z`)
	m := re.FindStringSubmatchIndex(path)
	if m == nil {
		return want{}
	}
	if re.NumSubexp() == 0 {
		return want{true, path}
	}
	var sb strings.Builder
	for g := 2; g+1 < len(m); g += 2 {
		if m[g] >= 0 {
			sb.WriteString(path[m[g]:m[g+1]])
		}
	}
	return want{true, sb.String()}
}

func matchPath(t *testing.T, expr, path string) (want, *pathRule) {
	t.Helper()
	p, err := compilePath(expr)
	if err != nil {
		t.Fatalf("compilePath(%q): %v", expr, err)
	}
	var fwd Forward
	if !p.match([]byte(path), &fwd) {
		return want{}, &p
	}
	return want{true, string(fwd.Path)}, &p
}

// TestPathShapes: the common shapes are recognised and matched without a
// regular expression, and say what the regexp package says.
func TestPathShapes(t *testing.T) {
	paths := []string{"", "/", "/api", "/api/", "/api/foo/bar", "/apix/foo", "/users", "/v1/users/7", "/api..", "/API/foo"}
	for _, c := range []struct {
		expr   string
		simple bool
	}{
		{"/api/.*", true},
		{"/api(/.*)", true},
		{"/api/(.*)", true},
		{"/api.*", true},
		{"/api(.*)", true},
		{"/api/.+", true},
		{"/api(/.+)", true},
		{"/users", true},
		{"(/users)", true},
		{"/api(/foo)/bar", true},
		{"().*", true},
		{"/api()/.*", true},
		{".*", true},
		{"(.*)", true},
		{".+", true},
		{"^/api/.*$", true},
		{`/api\.\.`, true},
		{"(?s)/api/.*", true},
		{"/api/.*?", true},
		{"(?i)/api/.*", false},
		{"/api(/.*)/x", false},
		{"(/a)(/b)", false},
		{"/v1/users/[0-9]+", false},
		{"/v1/users/([0-9]+)", false},
		{"/api|/users", false},
		{"/api/.*$/x", false},
	} {
		for _, path := range paths {
			got, p := matchPath(t, c.expr, path)
			if simple := p.re == nil; simple != c.simple {
				t.Errorf("%q: recognised as a simple shape: %v, want %v", c.expr, simple, c.simple)
			}
			if w := regexpWant(t, c.expr, path); got != w {
				t.Errorf("%q on %q: got %+v, regexp says %+v", c.expr, path, got, w)
			}
		}
	}
}

// TestCapturesAgainstRegexp holds the capture machine to the regexp
// package's leftmost-first groups.
func TestCapturesAgainstRegexp(t *testing.T) {
	exprs := []string{
		`/foo(/.)/bar(/.)`, `/foo(/.*)/bar(/.*)`, `(/[^/]+)*`, `/(a|ab)(c|bcd)(d*)`, `(a*)(a*)`, `(a*?)(a*)`,
		`/v1/users/([0-9]+)(/.*)?`, `(?i)/API(/.*)`, `(/x)?(/.*)`, `(?P<first>/[a-z]+)/[0-9]+(/.*)`, `(\b\w+\b)/(.*)`,
		`/ünï(cöde)`, `(.)(.)(.)`, `((/a)|(/b))+`,
	}
	inputs := []string{"", "/", "/foo/a/bar/b", "/foo/abc/bar/def", "/abcd", "/ab/cd", "/aaa", "aaaa", "/v1/users/42",
		"/v1/users/42/orders", "/api/x", "/Api/x", "/x/y", "/x", "/abc/123/rest", "abc/def", "/ünïcöde", "xyz", "/a/b/a", "/a/c"}
	for _, expr := range exprs {
		c, err := newCaptures(expr)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`\A(?:` + expr + `)\z`)
		for _, in := range inputs {
			w := re.FindStringSubmatchIndex(in)
			for _, pike := range []bool{false, true} {
				if got := c.groups([]byte(in), pike); !equalInts(got, w) {
					t.Errorf("%q on %q (Pike VM %v): groups %v, regexp says %v", expr, in, pike, got, w)
				}
			}
		}
	}
}

// FuzzCaptures: any expression and input, the machine's groups are
// regexp's.
func FuzzCaptures(f *testing.F) {
	f.Add(`/foo(/.*)/bar(/.*)`, "/foo/a/bar/b")
	f.Add(`(a|ab)(c|bcd)(d*)`, "abcd")
	f.Add(`(\b.)?(.*?)(x*)$`, "aax")
	f.Fuzz(func(t *testing.T, expr, in string) {
		if len(expr) > 64 || len(in) > 256 {
			return
		}
		if _, err := parse(expr); err != nil {
			// Refused when compiled, before it is wrapped.
			return
		}
		re, err := regexp.Compile(`\A(?:` + expr + `)\z`)
		if err != nil {
			// Text that ends the group early, such as \Q: regexp has
			// no way to say what the expression matches as a whole;
			// the two engines must still agree.
			c, err := newCaptures(expr)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := c.groups([]byte(in), false), c.groups([]byte(in), true); !equalInts(a, b) {
				t.Fatalf("%q on %q: the backtracker says %v, the Pike VM %v", expr, in, a, b)
			}
			return
		}
		c, err := newCaptures(expr)
		if err != nil {
			t.Fatalf("regexp compiles %q, the machine does not: %v", expr, err)
		}
		w := re.FindStringSubmatchIndex(in)
		for _, pike := range []bool{false, true} {
			if got := c.groups([]byte(in), pike); !equalInts(got, w) {
				t.Fatalf("%q on %q (Pike VM %v): groups %v, regexp says %v", expr, in, pike, got, w)
			}
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func request(method, path, host string, headers ...string) *Request {
	h := new(fasthttp.RequestHeader)
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return &Request{Listener: "main", Method: []byte(method), Path: []byte(path), Host: AppendHost(nil, []byte(host)), Header: h}
}

func mustCompile(t *testing.T, s Spec) *Cond {
	t.Helper()
	c, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", s, err)
	}
	return c
}

func TestAppendHost(t *testing.T) {
	for in, out := range map[string]string{
		"API.Example.com":        "api.example.com",
		"api.example.com:8443":   "api.example.com",
		"api.example.com.":       "api.example.com",
		"API.example.com.:8443":  "api.example.com",
		"[2001:DB8::1]:8443":     "[2001:db8::1]",
		"[2001:db8::1]":          "[2001:db8::1]",
		"10.0.0.1:80":            "10.0.0.1",
		"":                       "",
		"no-port.example.com:ab": "no-port.example.com",
	} {
		if got := string(AppendHost(nil, []byte(in))); got != out {
			t.Errorf("AppendHost(%q) = %q, want %q", in, got, out)
		}
	}
}

func TestHosts(t *testing.T) {
	c := mustCompile(t, Spec{Hosts: []string{"api.example.com", "*.Example.org"}})
	for host, ok := range map[string]bool{
		"api.example.com":      true,
		"API.EXAMPLE.COM:8443": true,
		"api.example.com.":     true,
		"www.example.com":      false,
		"a.example.org":        true,
		"a.b.example.org":      true,
		"example.org":          false,
		"xexample.org":         false,
		"":                     false,
	} {
		if got := c.Match(request("GET", "/", host), nil); got != ok {
			t.Errorf("host %q: %v, want %v", host, got, ok)
		}
	}
	for _, bad := range []string{"", "*", "*.", "a.*.com", "api.example.com:80", "a..b", ".a.com", "a.com.", "a b.com", "*example.com"} {
		if _, err := Compile(Spec{Hosts: []string{bad}}); err == nil {
			t.Errorf("host %q: no error", bad)
		}
	}
}

func TestHeaders(t *testing.T) {
	c := mustCompile(t, Spec{Headers: []Header{{Name: "X-Canary", Value: "true"}, {Name: "x-tier", Value: "gold|silver", Regex: true}}})
	for _, tc := range []struct {
		headers []string
		ok      bool
	}{
		{[]string{"x-canary", "true", "X-Tier", "gold"}, true},
		{[]string{"X-CANARY", "true", "x-tier", "silver"}, true},
		{[]string{"x-canary", "True", "x-tier", "gold"}, false},   // values are compared exactly
		{[]string{"x-canary", "true", "x-tier", "golden"}, false}, // the whole value
		{[]string{"x-canary", "true"}, false},
		{[]string{"x-canary", "true", "x-tier", ""}, false},
		{[]string{"x-canary", "false", "x-canary", "true", "x-tier", "gold"}, false}, // the first value
		{nil, false},
	} {
		if got := c.Match(request("GET", "/", "h", tc.headers...), nil); got != tc.ok {
			t.Errorf("headers %q: %v, want %v", tc.headers, got, tc.ok)
		}
	}
	if got := c.Match(&Request{Path: []byte("/")}, nil); got {
		t.Error("a request without headers matches")
	}
	for _, bad := range []Header{{Name: "", Value: "x"}, {Name: "x y", Value: "x"}, {Name: "x", Value: ""}, {Name: "x", Value: "(", Regex: true}} {
		if _, err := Compile(Spec{Headers: []Header{bad}}); err == nil {
			t.Errorf("header %+v: no error", bad)
		}
	}
}

func TestRules(t *testing.T) {
	c := mustCompile(t, Spec{Rules: []Rule{
		{Path: "/orders(/.*)", Methods: "GET|HEAD"},
		{Path: "/admin/.*", Host: "admin\\.example\\.com", Headers: []Header{{Name: "x-test", Value: "true"}}},
		{Methods: "PROPFIND"},
	}})
	for _, tc := range []struct {
		method, path, host string
		headers            []string
		ok                 bool
		fwd                string
	}{
		{"GET", "/orders/1", "x", nil, true, "/1"},
		{"HEAD", "/orders/1", "x", nil, true, "/1"},
		{"POST", "/orders/1", "x", nil, false, ""},
		{"GETX", "/orders/1", "x", nil, false, ""},
		{"GET", "/admin/x", "Admin.Example.com:80", []string{"x-test", "true"}, true, "/admin/x"},
		{"GET", "/admin/x", "adminxexample.com", []string{"x-test", "true"}, false, ""},
		{"GET", "/admin/x", "admin.example.com", []string{"x-test", "yes"}, false, ""},
		{"PROPFIND", "/anything", "x", nil, true, "/anything"},
		{"propfind", "/anything", "x", nil, false, ""},
	} {
		var fwd Forward
		ok := c.Match(request(tc.method, tc.path, tc.host, tc.headers...), &fwd)
		if ok != tc.ok || ok && string(fwd.Path) != tc.fwd {
			t.Errorf("%s %s host %s %q: (%v, %q), want (%v, %q)", tc.method, tc.path, tc.host, tc.headers, ok, fwd.Path, tc.ok, tc.fwd)
		}
	}
	for _, bad := range []Rule{{Path: "/a("}, {Host: "[a"}, {Methods: "GET|("}, {Headers: []Header{{Name: "x", Value: "*"}}}} {
		err := CheckRule(bad)
		if err == nil || !strings.Contains(err.Error(), "not a valid regular expression") && !strings.Contains(err.Error(), "header") {
			t.Errorf("rule %+v: error %v", bad, err)
		}
	}
}

func TestStripPrefix(t *testing.T) {
	c := mustCompile(t, Spec{StripPrefix: "/api/"})
	for path, fwd := range map[string]string{"/api/x/y": "/x/y", "/api/": "/", "/api": ""} {
		var f Forward
		if !c.Match(request("GET", path, "h"), &f) || string(f.Path) != fwd {
			t.Errorf("%s: forwards %q, want %q", path, f.Path, fwd)
		}
	}
	for _, path := range []string{"/apix", "/ap", "/", "/v1/api/x"} {
		if c.Match(request("GET", path, "h"), nil) {
			t.Errorf("%s matches", path)
		}
	}
	// The prefix alone reads as "/" to rules.
	c = mustCompile(t, Spec{StripPrefix: "/api", Rules: []Rule{{Path: "/"}}})
	if !c.Match(request("GET", "/api", "h"), nil) {
		t.Error("/api does not read as / to a rule")
	}
	if _, err := Compile(Spec{StripPrefix: "api"}); err == nil {
		t.Error("a prefix without a leading / is accepted")
	}
}

func TestListeners(t *testing.T) {
	c := mustCompile(t, Spec{Listeners: []string{"a", "b"}})
	for l, ok := range map[string]bool{"a": true, "b": true, "c": false, "": false} {
		r := request("GET", "/", "h")
		r.Listener = l
		if got := c.Match(r, nil); got != ok {
			t.Errorf("listener %q: %v", l, got)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes pools drop their items")
	}
	c := mustCompile(t, Spec{
		Hosts:   []string{"*.example.com"},
		Headers: []Header{{Name: "x-canary", Value: "true"}},
		Rules: []Rule{
			{Path: "/orders(/.*)", Methods: "GET"},
			{Path: "/v1/users/([0-9]+)(/.*)?", Host: ".*\\.example\\.com", Methods: "GET|POST", Headers: []Header{{Name: "x-tier", Value: "gold|silver"}}},
		},
	})
	req := request("POST", "/v1/users/42/orders/7", "api.example.com", "x-canary", "true", "x-tier", "gold")
	var fwd Forward
	if !c.Match(req, &fwd) || string(fwd.Path) != "42/orders/7" {
		t.Fatalf("forwards %q", fwd.Path)
	}
	if a := testing.AllocsPerRun(200, func() { c.Match(req, &fwd) }); a != 0 {
		t.Errorf("Match with captures allocates %v times", a)
	}
}

// FuzzPathRule: whatever the shape of a rule's path, fast or not, matching
// and forwarding say what the regexp package says.
func FuzzPathRule(f *testing.F) {
	f.Add(`/api(/.*)`, "/api/x")
	f.Add(`/foo(/.)/bar(/.)`, "/foo/a/bar/b")
	f.Add(`(/v1)/.+`, "/v1/")
	f.Fuzz(func(t *testing.T, expr, path string) {
		// An empty rule path matches any path, as Flex's default `.*`;
		// paths are normalised: ASCII, no control characters.
		if len(expr) == 0 || len(expr) > 64 || len(path) > 256 || strings.IndexFunc(path, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
			return
		}
		if _, err := regexp.Compile(`\A(?:` + expr + `)\z`); err != nil {
			return
		}
		if _, err := parse(expr); err != nil {
			return
		}
		if got, w := func() (want, want) {
			g, _ := matchPath(t, expr, path)
			return g, regexpWant(t, expr, path)
		}(); got != w {
			t.Fatalf("%q on %q: got %+v, regexp says %+v", expr, path, got, w)
		}
	})
}

// FuzzValue: host and header expressions, recognised shapes or not, match
// what the regexp package matches (a host in any case).
func FuzzValue(f *testing.F) {
	f.Add(`.*\.example\.com`, "api.example.com", true)
	f.Add(`gold.*`, "golden", false)
	f.Add(`.*ol.*`, "gold", false)
	f.Add(`test.com`, "TEST.com", true)
	f.Fuzz(func(t *testing.T, expr, in string, fold bool) {
		if len(expr) > 64 || len(in) > 256 || strings.ContainsRune(in, '\n') {
			return
		}
		if _, err := parse(expr); err != nil {
			return
		}
		flags := ""
		if fold {
			flags = "(?i)"
			// The gateway lowers a host (as ASCII) before it matches it.
			in = string(AppendHost(nil, []byte(in)))
			if strings.ContainsAny(in, ":[]") || strings.HasSuffix(in, ".") {
				return
			}
		}
		re, err := regexp.Compile(flags + `\A(?:` + expr + `)\z`)
		if err != nil {
			return
		}
		v, err := compileValue(expr, fold)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := v.matches([]byte(in)), re.MatchString(in); got != w {
			t.Fatalf("%q on %q (fold %v): %v, regexp says %v", expr, in, fold, got, w)
		}
	})
}

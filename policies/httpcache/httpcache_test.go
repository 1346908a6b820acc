package httpcache

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/policies/jwt"
)

// TestStoredAnswer: a miss goes to the origin and is stored; the next
// request of the key is answered from the cache with the origin's status,
// headers and body, and an Age that grows with the clock.
func TestStoredAnswer(t *testing.T) {
	ch, _, clk := cached(t, "- http-caching: {}\n")
	o := &origin{status: 200, body: "hello", headers: []string{"Content-Type", "text/plain", "X-Origin", "a", "X-Origin", "b"}}
	if r := get(ch, o, "/api/x"); r.fromCache || r.body != "hello" {
		t.Fatalf("first: %+v", r)
	}
	clk.advance(5 * time.Second)
	r := get(ch, o, "/api/x")
	if !r.fromCache || o.calls != 1 || r.status != 200 || r.body != "hello" || string(r.header.ContentType()) != "text/plain" ||
		string(r.header.Peek("Age")) != "5" || len(r.header.PeekAll("X-Origin")) != 2 {
		t.Errorf("second: %+v, %s", r, r.header)
	}
}

// TestParameters exercises each parameter of http-caching.
func TestParameters(t *testing.T) {
	t.Run("key", func(t *testing.T) {
		ch, _, _ := cached(t, "- http-caching: {key: \"#[attributes.headers['x-tenant']]\"}\n")
		o := &origin{status: 200, body: "b"}
		get(ch, o, "/api/a", "X-Tenant", "t1")
		if !get(ch, o, "/api/b", "X-Tenant", "t1").fromCache {
			t.Error("same tenant, other path: the key is the tenant")
		}
		if get(ch, o, "/api/a", "X-Tenant", "t2").fromCache {
			t.Error("another tenant was answered from t1's entry")
		}
	})
	t.Run("default key keeps queries apart", func(t *testing.T) {
		ch, _, _ := cached(t, "- http-caching: {}\n")
		o := &origin{status: 200, body: "b"}
		get(ch, o, "/api/a?page=1")
		if get(ch, o, "/api/a?page=2").fromCache {
			t.Error("?page=2 answered from ?page=1's entry")
		}
	})
	t.Run("ttl", func(t *testing.T) {
		ch, _, clk := cached(t, "- http-caching: {ttl: 30s}\n")
		o := &origin{status: 200, body: "b"}
		get(ch, o, "/api/a")
		clk.advance(29 * time.Second)
		if !get(ch, o, "/api/a").fromCache {
			t.Error("a hit within the ttl missed")
		}
		clk.advance(2 * time.Second)
		if get(ch, o, "/api/a").fromCache {
			t.Error("an entry past its ttl answered")
		}
	})
	t.Run("maxEntries", func(t *testing.T) {
		ch, c, _ := cached(t, "- http-caching: {maxEntries: 10}\n")
		o := &origin{status: 200, body: "b"}
		for i := range 200 {
			get(ch, o, fmt.Sprintf("/api/%d", i))
		}
		st := c.st.(*memStore)
		st.c.CleanUp()
		if n := st.len(); n > 10 {
			t.Errorf("%d entries held, maxEntries 10", n)
		}
	})
	t.Run("maxBytes", func(t *testing.T) {
		ch, c, _ := cached(t, "- http-caching: {maxBytes: 1MiB}\n")
		o := &origin{status: 200, body: strings.Repeat("x", 100<<10)}
		for i := range 100 {
			get(ch, o, fmt.Sprintf("/api/%d", i))
		}
		st := c.st.(*memStore)
		st.c.CleanUp()
		if w := st.c.WeightedSize(); w > 1<<20 {
			t.Errorf("%d bytes held, maxBytes 1MiB", w)
		}
		if n := st.len(); n == 0 || n > 10 {
			t.Errorf("%d entries of 100KiB held in 1MiB", n)
		}
	})
	t.Run("useHttpCacheHeaders", func(t *testing.T) {
		o := &origin{status: 200, body: "b", headers: []string{"Cache-Control", "no-store"}}
		ch, _, _ := cached(t, "- http-caching: {useHttpCacheHeaders: false}\n")
		get(ch, o, "/api/a")
		if !get(ch, o, "/api/a").fromCache {
			t.Error("useHttpCacheHeaders: false did not store a no-store answer")
		}
		ch, _, _ = cached(t, "- http-caching: {}\n")
		get(ch, o, "/api/a")
		if get(ch, o, "/api/a").fromCache {
			t.Error("a no-store answer was stored")
		}
	})
	t.Run("invalidationHeader", func(t *testing.T) {
		ch, _, _ := cached(t, "- http-caching: {invalidationHeader: X-Cache-Invalidate}\n")
		o := &origin{status: 200, body: "b"}
		get(ch, o, "/api/a")
		get(ch, o, "/api/b")
		if r := get(ch, o, "/api/a", "X-Cache-Invalidate", "something"); !r.fromCache {
			t.Error("another value invalidated")
		}
		if r := get(ch, o, "/api/a", "X-Cache-Invalidate", "invalidate"); r.fromCache || o.calls != 3 {
			t.Errorf("invalidate answered from the cache: %+v", r)
		}
		if !get(ch, o, "/api/a").fromCache || !get(ch, o, "/api/b").fromCache {
			t.Error("after invalidate, the answer fetched again was not stored, or another key went")
		}
		get(ch, o, "/api/a", "X-Cache-Invalidate", "invalidate-all")
		if get(ch, o, "/api/b").fromCache {
			t.Error("invalidate-all left another key")
		}
	})
	t.Run("requestExpression", func(t *testing.T) {
		ch, _, _ := cached(t, "- http-caching: {requestExpression: \"#[attributes.headers['x-cache'] == 'yes']\"}\n")
		o := &origin{status: 200, body: "b"}
		get(ch, o, "/api/a")
		if get(ch, o, "/api/a", "X-Cache", "yes").fromCache {
			t.Error("an answer to a request the expression refused was stored")
		}
		if !get(ch, o, "/api/a", "X-Cache", "yes").fromCache {
			t.Error("not stored for a request the expression takes")
		}
		if get(ch, o, "/api/a").fromCache {
			t.Error("a request the expression refuses was answered from the cache")
		}
	})
	t.Run("responseExpression", func(t *testing.T) {
		ch, _, _ := cached(t, "- http-caching: {}\n")
		o := &origin{status: 500, body: "e"}
		get(ch, o, "/api/a")
		if get(ch, o, "/api/a").fromCache {
			t.Error("a 500 was stored (not in the default list)")
		}
		o.status = 404
		get(ch, o, "/api/n")
		if !get(ch, o, "/api/n").fromCache {
			t.Error("a 404 was not stored (in the default list)")
		}
		ch, _, _ = cached(t, "- http-caching: {responseExpression: \"#[attributes.statusCode == 200 and attributes.headers['x-cacheable'] == 'yes']\"}\n")
		get(ch, o, "/api/n")
		o.status, o.headers = 200, []string{"X-Cacheable", "yes"}
		get(ch, o, "/api/a")
		if get(ch, o, "/api/n").fromCache || !get(ch, o, "/api/a").fromCache {
			t.Error("the response expression was not applied")
		}
	})
	t.Run("cacheAuthorized", func(t *testing.T) {
		o := &origin{status: 200, body: "alice's"}
		ch, _, _ := cached(t, "- http-caching: {}\n")
		get(ch, o, "/api/me", "Authorization", "Bearer alice")
		if get(ch, o, "/api/me").fromCache || get(ch, o, "/api/me", "Authorization", "Bearer bob").fromCache {
			t.Error("an answer to an authorized request was stored or used")
		}
		ch, _, _ = cached(t, "- http-caching: {cacheAuthorized: true, key: \"#[attributes.headers['authorization']]\"}\n")
		get(ch, o, "/api/me", "Authorization", "Bearer alice")
		if !get(ch, o, "/api/me", "Authorization", "Bearer alice").fromCache {
			t.Error("cacheAuthorized: true did not store")
		}
	})
	t.Run("cacheSetCookie", func(t *testing.T) {
		o := &origin{status: 200, body: "b", headers: []string{"Set-Cookie", "session=alice"}}
		ch, _, _ := cached(t, "- http-caching: {}\n")
		get(ch, o, "/api/a")
		if get(ch, o, "/api/a").fromCache {
			t.Error("an answer with Set-Cookie was stored")
		}
		ch, _, _ = cached(t, "- http-caching: {cacheSetCookie: true}\n")
		get(ch, o, "/api/a")
		if r := get(ch, o, "/api/a"); !r.fromCache || !strings.Contains(r.header.String(), "session=alice") {
			t.Errorf("cacheSetCookie: true: %+v", r)
		}
	})
}

// TestCacheControl: the directives of responses and requests, Expires,
// Date and Age, as a shared cache follows them (RFC 9111), never beyond
// the ttl.
func TestCacheControl(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		// fresh is how long the answer is served; 0: not stored.
		fresh time.Duration
	}{
		{"none: the ttl", nil, 600 * time.Second},
		{"no-store", []string{"Cache-Control", "no-store"}, 0},
		{"no-cache", []string{"Cache-Control", "no-cache"}, 0},
		{"private", []string{"Cache-Control", "private, max-age=60"}, 0},
		{"private in a second header", []string{"Cache-Control", "max-age=60", "Cache-Control", "private"}, 0},
		{"max-age", []string{"Cache-Control", "public, max-age=60"}, 60 * time.Second},
		{"max-age over the ttl", []string{"Cache-Control", "max-age=99999"}, 600 * time.Second},
		{"s-maxage over max-age", []string{"Cache-Control", "max-age=10, s-maxage=30"}, 30 * time.Second},
		{"max-age=0", []string{"Cache-Control", "max-age=0"}, 0},
		{"Age", []string{"Cache-Control", "max-age=60", "Age", "20"}, 40 * time.Second},
		{"Age past max-age", []string{"Cache-Control", "max-age=60", "Age", "90"}, 0},
		{"invalid Expires", []string{"Expires", "0"}, 0},
		{"Vary: *", []string{"Vary", "*"}, 0},
		{"Set-Cookie", []string{"Set-Cookie", "a=b"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, _, clk := cached(t, "- http-caching: {}\n")
			o := &origin{status: 200, body: "b", headers: tc.headers}
			get(ch, o, "/api/a")
			hit := get(ch, o, "/api/a").fromCache
			if hit != (tc.fresh > 0) {
				t.Fatalf("stored %v, want %v", hit, tc.fresh > 0)
			}
			if tc.fresh == 0 {
				return
			}
			clk.advance(tc.fresh - time.Second)
			if !get(ch, o, "/api/a").fromCache {
				t.Errorf("gone a second before %s", tc.fresh)
			}
			clk.advance(2 * time.Second)
			if get(ch, o, "/api/a").fromCache {
				t.Errorf("still served a second after %s", tc.fresh)
			}
		})
	}
	t.Run("Expires and Date", func(t *testing.T) {
		ch, _, clk := cached(t, "- http-caching: {}\n")
		o := &origin{status: 200, body: "b", headers: []string{"Date", clk.now().Format(http.TimeFormat), "Expires", clk.now().Add(45 * time.Second).Format(http.TimeFormat)}}
		get(ch, o, "/api/a")
		clk.advance(44 * time.Second)
		if !get(ch, o, "/api/a").fromCache {
			t.Error("gone before Expires")
		}
		clk.advance(2 * time.Second)
		if get(ch, o, "/api/a").fromCache {
			t.Error("served after Expires")
		}
	})
	t.Run("request directives", func(t *testing.T) {
		ch, _, clk := cached(t, "- http-caching: {}\n")
		o := &origin{status: 200, body: "v1"}
		get(ch, o, "/api/a")
		o.body = "v2"
		if r := get(ch, o, "/api/a", "Cache-Control", "no-cache"); r.fromCache || r.body != "v2" {
			t.Errorf("no-cache: %+v", r)
		}
		if r := get(ch, o, "/api/a"); !r.fromCache || r.body != "v2" {
			t.Errorf("the answer to no-cache was not stored: %+v", r)
		}
		o.body = "v3"
		if r := get(ch, o, "/api/a", "Cache-Control", "no-store"); !r.fromCache || r.body != "v2" {
			t.Errorf("no-store is answered from the cache: %+v", r)
		}
		clk.advance(10 * time.Second)
		if r := get(ch, o, "/api/a", "Cache-Control", "max-age=5"); r.fromCache || r.body != "v3" {
			t.Errorf("max-age=5 took an entry 10 s old: %+v", r)
		}
		get(ch, o, "/api/b", "Cache-Control", "no-store")
		if get(ch, o, "/api/b").fromCache {
			t.Error("the answer to no-store was stored")
		}
		if r := get(ch, o, "/api/c", "Cache-Control", "only-if-cached"); r.rej == nil || r.rej.Status != 504 || r.rej.Reason != "not_cached" {
			t.Errorf("only-if-cached on a miss: %+v", r)
		}
	})
}

// TestVary: an answer that varies on a request header is stored per
// value of it.
func TestVary(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {}\n")
	o := &origin{status: 200, headers: []string{"Vary", "Accept-Language"}}
	o.body = "hello"
	get(ch, o, "/api/a", "Accept-Language", "en")
	o.body = "bonjour"
	if r := get(ch, o, "/api/a", "Accept-Language", "fr"); r.fromCache || r.body != "bonjour" {
		t.Fatalf("fr answered with en's: %+v", r)
	}
	if r := get(ch, o, "/api/a", "Accept-Language", "en"); !r.fromCache || r.body != "hello" {
		t.Errorf("en: %+v", r)
	}
	if r := get(ch, o, "/api/a", "Accept-Language", "fr"); !r.fromCache || r.body != "bonjour" {
		t.Errorf("fr: %+v", r)
	}
	if r := get(ch, o, "/api/a"); r.fromCache {
		t.Errorf("no Accept-Language answered from a language's entry: %+v", r)
	}
}

// TestInvalidateDropsVariants: invalidating a key whose answers vary
// makes every variant unreachable, also once a new answer is stored.
func TestInvalidateDropsVariants(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {invalidationHeader: X-Invalidate}\n")
	o := &origin{status: 200, headers: []string{"Vary", "Accept-Language"}}
	for _, l := range []string{"fr", "de"} {
		o.body = l
		get(ch, o, "/api/a", "Accept-Language", l)
	}
	for _, l := range []string{"fr", "de"} {
		if r := get(ch, o, "/api/a", "Accept-Language", l); !r.fromCache || r.body != l {
			t.Fatalf("%s before the invalidation: %+v", l, r)
		}
	}
	o.body = "en"
	if r := get(ch, o, "/api/a", "Accept-Language", "en", "X-Invalidate", "invalidate"); r.fromCache {
		t.Fatalf("the invalidation was answered from the cache: %+v", r)
	}
	for _, l := range []string{"fr", "de"} {
		o.body = "new " + l
		if r := get(ch, o, "/api/a", "Accept-Language", l); r.fromCache || r.body != "new "+l {
			t.Errorf("%s after the invalidation: %+v", l, r)
		}
	}
}

// TestNotStored: what is never stored: partial content, the gateway's own
// errors, answers to requests with a body, HEAD's answers.
func TestNotStored(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {requestExpression: \"#[true]\"}\n")
	o := &origin{status: 206, body: "part"}
	get(ch, o, "/api/p")
	if get(ch, o, "/api/p").fromCache {
		t.Error("a 206 was stored")
	}
	o.status = 200
	exchange(ch, o, "HEAD", "/api/h")
	if get(ch, o, "/api/h").fromCache {
		t.Error("a HEAD's answer (no body) was stored for GET")
	}
	ctx := chaintest.Ctx("http://gw/api/b")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetBodyString("x")
	if rej := chaintest.Run(ch, ctx); rej != nil {
		t.Fatal(rej)
	}
	o.status, o.headers = 502, []string{"X-Flexgate-Error", "upstream_unreachable"}
	get(ch, o, "/api/e")
	if get(ch, o, "/api/e").fromCache {
		t.Error("the gateway's own error was stored")
	}
}

// TestErrors: each bad parameter is an error at its place.
func TestErrors(t *testing.T) {
	for _, tc := range []struct{ policy, pos, want string }{
		{"- http-caching: {key: static}", "12:31", `the key "static" has no expression`},
		{"- http-caching: {key: \"#[attributes.nope]\"}", "12:45", "key:"},
		{"- http-caching: {maxEntries: 0}", "12:38", fmt.Sprintf("maxEntries must be a whole number from 1 to %d, not 0", maxMaxEntries)},
		{"- http-caching: {maxEntries: 1e30}", "12:38", fmt.Sprintf(`maxEntries must be a whole number from 1 to %d, not "1e30"`, maxMaxEntries)},
		{"- http-caching: {maxBytes: 10KiB}", "12:36", `maxBytes must be a size from 1MiB to 64GiB, such as 256MiB, not "10KiB"`},
		{"- http-caching: {ttl: 600}", "12:31", `ttl must be a duration with a unit like 500ms, 2s or 1m, not "600"`},
		{"- http-caching: {ttl: 0s}", "12:31", `ttl "0s" is out of range: use 1s to 8784h (366 days)`},
		{"- http-caching: {ttl: -10m}", "12:31", `ttl "-10m" is out of range: use 1s to 8784h (366 days)`},
		{"- http-caching: {ttl: 8785h}", "12:31", `ttl "8785h" is out of range: use 1s to 8784h (366 days)`},
		// Longer than Go holds, but written as a duration: out of range.
		{"- http-caching: {ttl: 99999999999h}", "12:31", `ttl "99999999999h" is out of range: use 1s to 8784h (366 days)`},
		{"- http-caching: {cacheAuthorized: yes}", "12:43", `cacheAuthorized must be true or false, not "yes"`},
		{"- http-caching: {invalidationHeader: \"bad header\"}", "12:46", `invalidationHeader "bad header" is not a header name`},
		{"- http-caching: {requestExpression: \"#[attributes.method]\"}", "12:48", "a condition must be true or false"},
		// A claim may hold anything: true or false only when it is.
		{"- jwt-validation: {keys: [{secret: abcdefghijabcdefghijabcdefghij12}]}\n- http-caching: {requestExpression: \"#[authentication.properties.claims.tier]\"}",
			"13:45", `requestExpression "#[authentication.properties.claims.tier]" is true or false only when what it reads is`},
		{"- http-caching: {responseExpression: \"#[attributes.statusCode == '200']\"}", "12:71", "responseExpression: == compares a number with text"},
		{"- http-caching-flex: {maxCacheEntries: -1}", "12:48", fmt.Sprintf("maxCacheEntries must be a whole number from 1 to %d, not -1", maxMaxEntries)},
		{"- http-caching-flex: {ttl: 0}", "12:36", "ttl must be a whole number from 1 to 31622400 (seconds), not 0"},
		// 18446744080 s in nanoseconds is 2⁶⁴ + 6.3e9: as a Duration,
		// 6.3 s, which was taken for the ttl.
		{"- http-caching-flex: {ttl: 18446744080}", "12:36", "ttl must be a whole number from 1 to 31622400 (seconds), not 18446744080"},
		{"- http-caching-flex: {ttl: -60}", "12:36", "ttl must be a whole number from 1 to 31622400 (seconds), not -60"},
		{"- http-caching-flex: {ttl: 99999999999999999999}", "12:36", "ttl must be a whole number from 1 to 31622400 (seconds), not 99999999999999999999"},
		{"- http-caching-flex: {useHttpCacheHeaders: no}", "12:52", `useHttpCacheHeaders must be true or false, not "no"`},
		{"- http-caching-flex: {httpCachingKey: \"#[attributes.statusCode]\"}", "12:61", "httpCachingKey: attributes.statusCode is the upstream's status"},
	} {
		_, path, err := chaintest.Compile(t, chaintest.Gateway(tc.policy))
		if err == nil {
			t.Errorf("%s: no error", tc.policy)
			continue
		}
		if !strings.HasPrefix(err.Error(), path+":"+tc.pos+":") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s:%s: …%s…", tc.policy, err, path, tc.pos, tc.want)
		}
	}
}

// TestVariantKeysCannotBeForged: a key computed from what a client sends
// (a decoded query parameter may hold any byte) never names another
// key's variant, so no client can store an answer that another client's
// request of another key would get.
func TestVariantKeysCannotBeForged(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {key: \"#[attributes.queryParams.k]\"}\n")
	victim := &origin{status: 200, body: "real", headers: []string{"Vary", "Accept-Language"}}
	get(ch, victim, "/api/x?k=X", "Accept-Language", "fr") // stores the Vary marker of X
	attacker := &origin{status: 200, body: "forged"}
	// The attacker's key is X, then the bytes a variant of X for "en"
	// would have had.
	for _, forged := range []string{"X%01en%00", "X%01%00en%00", "X%00%01en%00"} {
		get(ch, attacker, "/api/x?k="+forged)
	}
	if r := get(ch, victim, "/api/x?k=X", "Accept-Language", "en"); r.body != "real" {
		t.Errorf("the victim got %q", r.body)
	}
}

// TestWarnings: a policy that may refuse requests, put after the cache,
// does not see the requests the cache answers; Flex's default key ignores
// the query; distributed and persistCache are not supported: the config
// says each, at its place.
func TestWarnings(t *testing.T) {
	warnings := func(policies string) string {
		t.Helper()
		cfg, path := chaintest.Load(t, chaintest.Gateway(policies))
		if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range cfg.Warnings {
			out = append(out, strings.TrimPrefix(w.String(), path+":"))
		}
		return strings.Join(out, "\n")
	}
	if w := warnings("- rate-limiting: {limit: 10, period: 1}\n- http-caching: {}\n- spike-control: {limit: 10, period: 1s}\n- request-headers-set: {headers: {a: b}}\n"); !strings.Contains(w,
		"13:11: warning: http-caching: spike-control run after the cache: a request answered from the cache skips them") || strings.Contains(w, "rate-limiting run") {
		t.Errorf("warnings:\n%s", w)
	}
	if w := warnings("- http-caching: {}\n"); w != "" {
		t.Errorf("warnings:\n%s", w)
	}
	w := warnings("- http-caching-flex: {distributed: true, persistCache: true}\n")
	for _, want := range []string{"12:11: warning: http-caching-flex: httpCachingKey is left out", "12:44: warning: http-caching-flex: distributed: true, but spec.sharedStorage is not configured",
		"12:64: warning: http-caching-flex: persistCache: true is not supported"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings:\n%s\nwant %s", w, want)
		}
	}
}

// TestRoutesKeepTheirEntries: the routes of a Flex API instance run one
// cache, and may send one path to different upstreams (by host or
// header): an answer of one route never answers a request of another.
func TestRoutesKeepTheirEntries(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {}\n")
	a, b := &origin{status: 200, body: "from a"}, &origin{status: 200, body: "from b"}
	exchangeOn(ch, "a", a, "GET", "/api/x")
	if r := exchangeOn(ch, "b", b, "GET", "/api/x"); r.body != "from b" || r.fromCache {
		t.Errorf("route b got %q (from the cache: %t)", r.body, r.fromCache)
	}
	if r := exchangeOn(ch, "a", a, "GET", "/api/x"); r.body != "from a" || !r.fromCache {
		t.Errorf("route a got %q (from the cache: %t)", r.body, r.fromCache)
	}
}

// TestEntryEncoding: an entry read back from Redis is the entry written;
// a value cut short or of another format is refused, never read past.
func TestEntryEncoding(t *testing.T) {
	e := &entry{kind: kindResponse, status: 203, stored: 1234567890, age: 7, ttl: 90 * time.Second,
		headers: []field{{[]byte("Content-Type"), []byte("text/plain")}, {[]byte("X-Empty"), nil}}, body: []byte("the body")}
	v := &entry{kind: kindVary, ttl: time.Minute, gen: 1<<63 + 5, vary: [][]byte{[]byte("accept-language"), []byte("accept")}}
	for _, want := range []*entry{e, v} {
		b := encodeEntry(want)
		got, err := decodeEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.kind != want.kind || got.status != want.status || got.stored != want.stored || got.age != want.age || got.ttl != want.ttl || got.gen != want.gen ||
			string(got.body) != string(want.body) || len(got.headers) != len(want.headers) || len(got.vary) != len(want.vary) {
			t.Errorf("decoded %+v, want %+v", got, want)
		}
		for i := range want.headers {
			if string(got.headers[i].name) != string(want.headers[i].name) || string(got.headers[i].value) != string(want.headers[i].value) {
				t.Errorf("header %d: %q: %q", i, got.headers[i].name, got.headers[i].value)
			}
		}
		for i := range want.vary {
			if string(got.vary[i]) != string(want.vary[i]) {
				t.Errorf("vary %d: %q", i, got.vary[i])
			}
		}
		if len(got.varyNames) != len(want.vary) {
			t.Errorf("%d vary names in every spelling, want %d", len(got.varyNames), len(want.vary))
		}
		for n := range len(b) - len(want.body) {
			if _, err := decodeEntry(b[:n]); err == nil {
				t.Errorf("a value cut to %d bytes was read", n)
			}
		}
	}
	// A marker naming a header of more spellings than are looked for
	// cannot tell requests apart.
	v.vary = [][]byte{[]byte("a-b-c-d-e-f-g-h")}
	if _, err := decodeEntry(encodeEntry(v)); err == nil {
		t.Error("a marker of a header with 7 '-' was read")
	}
	if _, err := decodeEntry([]byte("fgc1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")); err == nil {
		t.Error("another format was read")
	}
}

// TestVaryExplosion: an answer that varies on a header every client sets
// differently makes an entry per value, and those count against
// maxEntries like any: the cache holds no more.
func TestVaryExplosion(t *testing.T) {
	ch, c, _ := cached(t, "- http-caching: {maxEntries: 100}\n")
	o := &origin{status: 200, body: "b", headers: []string{"Vary", "X-Random"}}
	for i := range 5000 {
		get(ch, o, "/api/x", "X-Random", strconv.Itoa(i))
	}
	c.st.(*memStore).c.CleanUp()
	if n := c.st.len(); n > 100 {
		t.Errorf("%d entries after 5000 variants, want at most 100", n)
	}
}

// TestAmbiguousRequestsAreNotCached: what decides whether a request uses
// the cache, or its answer is stored, chooses its entry as much as the key
// does: a condition that keeps preview answers out (X-Preview), a
// response condition on a draft parameter, the route's and the policy's
// header rules. A request that carries one of them in another spelling,
// or twice, goes upstream, is counted as ambiguous, and its answer is not
// stored.
func TestAmbiguousRequestsAreNotCached(t *testing.T) {
	cfg, _ := chaintest.Load(t, chaintest.Gateway(`        - http-caching:
            requestExpression: "#[(attributes.headers['x-preview'] default '') == '']"
            responseExpression: "#[(attributes.queryParams.draft default '') == '']"
            key: "#[attributes.requestPath]"
`))
	r := &cfg.Routes[0]
	r.Headers = []config.HeaderMatch{{Name: "X-Tenant", Value: "a"}}
	r.Policies[0].When = []config.MatchRule{{Headers: []config.HeaderMatch{{Name: "X-Env", Value: "live"}}}}
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Retire(nil) })
	ch := set.Chains[0]
	c := ch.Policies[0].Policy.(*Cache)
	plain := []string{"X-Tenant", "a", "X-Env", "live"}
	for i, attack := range []struct {
		query   string
		headers []string
	}{
		{"", []string{"X_Preview", "1"}},
		{"", []string{"x_preview", "1"}},
		{"?DRAFT=1", nil},
		{"?draft=&draft=1", nil},
		{"?draft[]=1", nil},
		{"", []string{"X_Tenant", "b"}},
		{"", []string{"X-Tenant", "b"}},
		{"", []string{"X_Env", "test"}},
	} {
		uri := fmt.Sprintf("/api/%d", i)
		o := &origin{status: 200, body: "not for everyone"}
		before := c.series.ambiguous.Get()
		if r := get(ch, o, uri+attack.query, append(slices.Clone(plain), attack.headers...)...); r.fromCache || o.calls != 1 {
			t.Fatalf("%s%s %q: %+v", uri, attack.query, attack.headers, r)
		}
		if n := c.series.ambiguous.Get() - before; n != 1 {
			t.Errorf("%s%s %q: counted %d times as ambiguous", uri, attack.query, attack.headers, n)
		}
		o.body = "for everyone"
		if r := get(ch, o, uri, plain...); r.fromCache || r.body != "for everyone" {
			t.Errorf("%s%s %q: stored, and given to a plain request: %+v", uri, attack.query, attack.headers, r)
		}
		if r := get(ch, o, uri, plain...); !r.fromCache {
			t.Errorf("%s: a plain request was not stored: %+v", uri, r)
		}
	}
}

// TestAmbiguousKeyErrors: a header the key reads is looked for in every
// spelling, of which there can be only so many.
func TestAmbiguousKeyErrors(t *testing.T) {
	_, path, err := chaintest.Compile(t, chaintest.Gateway("        - http-caching: {key: \"$request.header.A-B-C-D-E-F-G-H\"}\n"))
	want := path + ":12:31: http-caching: key reads the header A-B-C-D-E-F-G-H, so the cache looks for it in every spelling an upstream reads, and " +
		`header name "A-B-C-D-E-F-G-H" has more than 6 '-' and '_'`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant %s…", err, want)
	}
}

// TestKeyAlternativesAreAmbiguous: a key that reads a header or else a
// query parameter keys a request carrying both by the header, while an
// upstream may answer by the query: such a request is neither stored nor
// answered from the cache.
func TestKeyAlternativesAreAmbiguous(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {key: \"#[attributes.requestPath ++ (attributes.headers['x-lang'] default attributes.queryParams.lang)]\"}\n")
	attacker := &origin{status: 200, body: "fr"}
	get(ch, attacker, "/page?lang=fr", "X-Lang", "en")
	get(ch, attacker, "/page?lang=fr", "X-Lang", "en")
	if attacker.calls != 2 {
		t.Errorf("a request with the header and the query was answered from the cache (%d calls upstream, want 2)", attacker.calls)
	}
	victim := &origin{status: 200, body: "en"}
	if r := get(ch, victim, "/page", "X-Lang", "en"); r.body != "en" || victim.calls != 1 {
		t.Errorf("a plain request got %q (%d calls upstream): the ambiguous answer was stored", r.body, victim.calls)
	}
	if r := get(ch, victim, "/page", "X-Lang", "en"); !r.fromCache {
		t.Error("a plain request is not cached")
	}
}

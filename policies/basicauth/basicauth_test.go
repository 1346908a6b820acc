package basicauth

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/crypto/bcrypt"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func bcryptOf(t testing.TB, pass string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

type fixture struct {
	c   *chain.Chain
	set *metrics.Set
}

func compile(t testing.TB, policies string) (fixture, error) {
	t.Helper()
	set := metrics.NewSet()
	c, _, err := chaintest.CompileRoute(t, chaintest.Doc{Policies: policies}, chaintest.Options{Metrics: set})
	return fixture{c, set}, err
}

func mustCompile(t testing.TB, policies string) fixture {
	t.Helper()
	f, err := compile(t, policies)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) core() *core {
	switch p := f.c.Policies[0].Policy.(type) {
	case *Authenticator:
		return &p.core
	case *FlexAuthenticator:
		return &p.core
	}
	panic("not a basic authentication policy")
}

func (f fixture) bcryptChecks(result string) uint64 {
	return f.set.GetOrCreateCounter(`flexgate_basic_auth_bcrypt_checks_total{route="r",result="` + result + `"}`).Get()
}

type outcome struct {
	rej       *chain.Rejection
	challenge string
	user      string
	principal string
	upstream  string // the Authorization header left for the upstream
}

func (f fixture) do(headers ...string) outcome { return f.doURI("http://gw/api/x", headers...) }

func (f fixture) doURI(uri string, headers ...string) outcome {
	ctx := chaintest.Ctx(uri, headers...)
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(f.c)
	rej := f.c.RunRequest(ctx, ex)
	return outcome{rej, string(ctx.Response.Header.Peek("WWW-Authenticate")), string(ex.Value(clientIDValue)),
		string(ex.Value(principalValue)), string(ctx.Request.Header.Peek("Authorization"))}
}

func TestFlexUser(t *testing.T) {
	t.Setenv("BASIC_PASSWORD", "s3cret:with colon")
	f := mustCompile(t, "- http-basic-authentication-flex: {username: chris, password: $env.BASIC_PASSWORD}")
	o := f.do("Authorization", basic("chris", "s3cret:with colon"))
	if o.rej != nil || o.user != "chris" || o.principal != "chris" || o.upstream != "" {
		t.Fatalf("%+v", o)
	}
	o = f.do("Authorization", basic("chris", "s3cret"))
	if o.rej == nil || o.rej.Status != 401 || o.rej.Reason != "invalid_credentials" || o.challenge != `Basic realm="flexgate", charset="UTF-8"` || o.user != "" {
		t.Fatalf("%+v", o)
	}
}

// TestAttacks sends what an attacker would: no credentials, other schemes,
// broken encodings, a missing colon, an empty user, huge headers, two
// headers; each gets its 401 (or 400) with the challenge, and none passes.
func TestAttacks(t *testing.T) {
	f := mustCompile(t, "- http-basic-authentication: {username: alice, password: wonderland, realm: Orders API}")
	long := basic("alice", strings.Repeat("x", 2000))
	cases := []struct {
		name, reason string
		headers      []string
	}{
		{"none", "missing_credentials", nil},
		{"bearer", "missing_credentials", []string{"Authorization", "Bearer abc"}},
		{"basicx scheme", "missing_credentials", []string{"Authorization", "Basicx " + basic("alice", "wonderland")[6:]}},
		{"bare scheme", "malformed_credentials", []string{"Authorization", "Basic"}},
		{"bad base64", "malformed_credentials", []string{"Authorization", "Basic !!!!"}},
		{"unpadded base64", "malformed_credentials", []string{"Authorization", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:wonderland"))}},
		{"url-safe base64", "malformed_credentials", []string{"Authorization", "Basic " + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString([]byte("alice:>>>?")))}},
		{"no colon", "malformed_credentials", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alicewonderland"))}},
		{"empty user", "malformed_credentials", []string{"Authorization", basic("", "wonderland")}},
		{"too long", "malformed_credentials", []string{"Authorization", long}},
		{"very long", "malformed_credentials", []string{"Authorization", basic("alice", strings.Repeat("wonderland", 6000))}},
		{"very long garbage", "malformed_credentials", []string{"Authorization", "Basic " + strings.Repeat("!", 60000)}},
		{"only a colon", "malformed_credentials", []string{"Authorization", basic("", "")}},
		{"base64 with trailing data", "malformed_credentials", []string{"Authorization", basic("alice", "wonderland") + "AAAA="}},
		{"wrong password", "invalid_credentials", []string{"Authorization", basic("alice", "Wonderland")}},
		{"password prefix", "invalid_credentials", []string{"Authorization", basic("alice", "wonder")}},
		{"unknown user", "invalid_credentials", []string{"Authorization", basic("bob", "wonderland")}},
		{"user case", "invalid_credentials", []string{"Authorization", basic("Alice", "wonderland")}},
		{"NUL in user", "invalid_credentials", []string{"Authorization", basic("alice\x00", "wonderland")}},
		{"two headers", "duplicate_credentials", []string{"Authorization", basic("alice", "wonderland"), "Authorization", basic("mallory", "x")}},
		{"second in another case", "duplicate_credentials", []string{"Authorization", basic("alice", "wonderland"), "AUTHORIZATION", basic("mallory", "x")}},
	}
	for _, tc := range cases {
		o := f.do(tc.headers...)
		want := 401
		if tc.reason == "duplicate_credentials" {
			want = 400
		}
		if o.rej == nil || o.rej.Status != want || o.rej.Reason != tc.reason || o.rej.Policy != "http-basic-authentication" {
			t.Errorf("%s: %v, want %d %s", tc.name, o.rej, want, tc.reason)
			continue
		}
		if want == 401 && o.challenge != `Basic realm="Orders API", charset="UTF-8"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, o.challenge)
		}
		if o.user != "" || strings.Contains(o.rej.Message, "wonderland") {
			t.Errorf("%s: user %q, message %q", tc.name, o.user, o.rej.Message)
		}
	}
	// An upstream that reads credentials from the query would read these,
	// which nobody checked.
	for _, uri := range []string{"http://gw/api/x?authorization=" + basic("mallory", "x"), "http://gw/api/x?AUTHORIZATION=x"} {
		o := f.doURI(uri, "Authorization", basic("alice", "wonderland"))
		if o.rej == nil || o.rej.Status != 400 || o.rej.Reason != "duplicate_credentials" || o.user != "" ||
			!strings.Contains(o.rej.Message, "carries Authorization as a query parameter") {
			t.Errorf("%s: %+v", uri, o)
		}
	}
	// The scheme in any case, and any number of spaces after it.
	for _, v := range []string{basic("alice", "wonderland"), "bAsIc " + basic("alice", "wonderland")[6:], "BASIC   " + basic("alice", "wonderland")[6:]} {
		if o := f.do("Authorization", v); o.rej != nil || o.user != "alice" {
			t.Errorf("%q: %+v", v, o)
		}
	}
}

// TestUnicode: names and passwords compare in NFC, so é sent decomposed
// (e and U+0301) is é; case and other differences still count.
func TestUnicode(t *testing.T) {
	const nfc, nfd = "Jos\u00e9", "Jose\u0301"
	sum := sha256.Sum256([]byte("p\u00e4ss"))
	f := mustCompile(t, fmt.Sprintf(`- http-basic-authentication:
    users:
      - {username: "%s", password: "caf\u00e9"}
      - {username: "Zo\u0308e", passwordHash: "sha256:%x"}
      - {username: "Åsa", passwordHash: "%s"}`, nfd, sum, bcryptOf(t, "\u00f1and\u00fa")))
	for _, tc := range []struct {
		user, pass, want string
	}{
		{nfc, "caf\u00e9", nfc}, {nfd, "cafe\u0301", nfc}, {nfc, "cafe\u0301", nfc},
		{"Z\u00f6e", "pa\u0308ss", "Z\u00f6e"}, {"Zo\u0308e", "p\u00e4ss", "Z\u00f6e"},
		{"A\u030asa", "n\u0303andu\u0301", "Åsa"}, {"Åsa", "\u00f1and\u00fa", "Åsa"},
	} {
		if o := f.do("Authorization", basic(tc.user, tc.pass)); o.rej != nil || o.user != tc.want {
			t.Errorf("%q:%q: %+v", tc.user, tc.pass, o)
		}
	}
	for _, tc := range []struct{ user, pass string }{{"jos\u00e9", "caf\u00e9"}, {nfc, "cafe"}, {nfc, "caf\u00c9"}, {nfc, "caf\xe9"}} {
		if o := f.do("Authorization", basic(tc.user, tc.pass)); o.rej == nil || o.rej.Reason != "invalid_credentials" {
			t.Errorf("%q:%q: %+v", tc.user, tc.pass, o)
		}
	}
	if _, err := compile(t, fmt.Sprintf(`- http-basic-authentication: {users: [{username: "%s", password: a}, {username: "%s", password: b}]}`, nfc, nfd)); err == nil ||
		!strings.Contains(err.Error(), "is also given at line") {
		t.Errorf("the same name in NFC and NFD: %v", err)
	}
}

// TestBcryptIsCached: bcrypt runs once per user and password; the known
// password is then checked by its keyed digest, a wrong one always costs a
// bcrypt and is never remembered, and the memory ends after verifiedTTL.
func TestBcryptIsCached(t *testing.T) {
	f := mustCompile(t, fmt.Sprintf(`- http-basic-authentication: {users: [{username: alice, passwordHash: "%s"}, {username: plain, password: x}]}`,
		bcryptOf(t, "wonderland")))
	now := time.Unix(1_000_000, 0)
	f.core().now = func() time.Time { return now }
	ok := func(pass string) bool { return f.do("Authorization", basic("alice", pass)).rej == nil }
	if !ok("wonderland") || f.bcryptChecks("pass") != 1 {
		t.Fatalf("first request: bcrypt passes %d", f.bcryptChecks("pass"))
	}
	for range 5 {
		if !ok("wonderland") {
			t.Fatal("refused")
		}
	}
	if f.bcryptChecks("pass") != 1 {
		t.Errorf("bcrypt ran %d times for one password", f.bcryptChecks("pass"))
	}
	for i := range 3 {
		if ok("wonderlanD") || ok("wonderland ") {
			t.Fatal("a wrong password passed")
		}
		if got := f.bcryptChecks("fail"); got != uint64(2*(i+1)) {
			t.Errorf("wrong passwords: %d bcrypt failures, want %d", got, 2*(i+1))
		}
	}
	if !ok("wonderland") || f.bcryptChecks("pass") != 1 {
		t.Error("the known password after wrong ones")
	}
	// Unknown users and the plain user's wrong passwords cost a bcrypt too.
	before := f.bcryptChecks("fail")
	f.do("Authorization", basic("mallory", "wonderland"))
	f.do("Authorization", basic("plain", "y"))
	if got := f.bcryptChecks("fail") - before; got != 2 {
		t.Errorf("an unknown user and a wrong plain password: %d decoy checks, want 2", got)
	}
	now = now.Add(verifiedTTL + time.Second)
	if !ok("wonderland") || f.bcryptChecks("pass") != 2 {
		t.Errorf("after the TTL: bcrypt passes %d, want 2", f.bcryptChecks("pass"))
	}
}

// TestSHACryptIsCachedAndDecoyed: with SHA-crypt users and no bcrypt ones,
// an accepted password is remembered as a bcrypt one is, and an unknown
// user or a plain user's wrong password costs a SHA-crypt check of the
// most rounds in use.
func TestSHACryptIsCachedAndDecoyed(t *testing.T) {
	f := mustCompile(t, fmt.Sprintf(`- http-basic-authentication: {users: [{username: alice, passwordHash: "%s"}, {username: plain, password: x}]}`,
		shaCryptVectors[2].hash))
	ok := func(pass string) bool { return f.do("Authorization", basic("alice", pass)).rej == nil }
	for range 3 {
		if !ok("Hello world!") {
			t.Fatal("refused")
		}
	}
	if got := f.bcryptChecks("pass"); got != 1 {
		t.Errorf("SHA-crypt ran %d times for one password", got)
	}
	if ok("Hello world") || f.bcryptChecks("fail") != 1 {
		t.Errorf("a wrong password: %d failed checks", f.bcryptChecks("fail"))
	}
	f.do("Authorization", basic("mallory", "Hello world!"))
	f.do("Authorization", basic("plain", "y"))
	if got := f.bcryptChecks("fail"); got != 3 {
		t.Errorf("an unknown user and a wrong plain password: %d slow checks failed in all, want 3", got)
	}
	if d := f.core().dummy; d.kind != kindSHACrypt || d.crypt.rounds != 10000 || d.crypt.sha512 {
		t.Errorf("the decoy is %+v, want $5$ with 10000 rounds", d)
	}
}

func TestHtpasswdFile(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("two"))
	file := filepath.Join(dir, "htpasswd")
	content := fmt.Sprintf("# users\n\nbcrypt:%s\r\nsha-b64:{SHA256}%s\nsha-hex:sha256:%x\ncrypt256:%s\ncrypt512:%s\n", bcryptOf(t, "one"),
		base64.StdEncoding.EncodeToString(sum[:]), sum, shaCryptVectors[0].hash, shaCryptVectors[3].hash)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f := mustCompile(t, "- http-basic-authentication: {htpasswdFile: "+file+", username: inline, password: three}")
	for user, pass := range map[string]string{"bcrypt": "one", "sha-b64": "two", "sha-hex": "two", "inline": "three",
		"crypt256": shaCryptVectors[0].password, "crypt512": shaCryptVectors[3].password} {
		if o := f.do("Authorization", basic(user, pass)); o.rej != nil || o.user != user {
			t.Errorf("%s: %+v", user, o)
		}
		if o := f.do("Authorization", basic(user, pass+"x")); o.rej == nil {
			t.Errorf("%s with a wrong password passed", user)
		}
	}
	// A SHA-256 user is not let in by sending the hash itself.
	if o := f.do("Authorization", basic("sha-hex", fmt.Sprintf("%x", sum))); o.rej == nil {
		t.Error("the hash passed as the password")
	}
}

// shaCryptVectors are hashes glibc's crypt(3) (and openssl passwd -5/-6)
// makes, with their passwords: the first three are the specification's own.
var shaCryptVectors = []struct{ hash, password string }{
	{"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!"},
	{"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!"},
	{"$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA", "Hello world!"},
	{"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.", "the minimum number is still observed"},
	{"$5$rounds=12345$x$piVc.blMX2E2zfwmPxw/mN94mcVhjMJ9AFwStPde8D8", strings.Repeat("a", 70)},
	{"$6$rounds=1400$abcdefghijklmnop$5cJjbpoXCVd1enUI2HhfC6otY2qpYanTcqMBV8P8XLxzjFdlXbifBHstWhn3xH5Fzisomd7HANTyN7z8Y9GjQ1", "p\u00e4ssw\u00f6rd \u20ac" + strings.Repeat("x", 130)},
	{"$5$ab$qRq/oZkUn9lJUSIcgVT3NbpSDsjn.r137TBSoCt2kCA", ""},
}

func TestSHACrypt(t *testing.T) {
	for _, v := range shaCryptVectors {
		cred, err := parseHash(v.hash)
		if err != nil || cred.kind != kindSHACrypt {
			t.Fatalf("%s: %v", v.hash, err)
		}
		if !cred.crypt.verify([]byte(v.password)) {
			t.Errorf("%s: %q does not verify", v.hash, v.password)
		}
		if cred.crypt.verify([]byte(v.password + "x")) {
			t.Errorf("%s: a wrong password verifies", v.hash)
		}
	}
}

func TestHtpasswdErrors(t *testing.T) {
	sha1 := "{SHA}" + base64.StdEncoding.EncodeToString(make([]byte, 20))
	for content, want := range map[string]string{
		"alice:$apr1$abc$def\n": "htpasswd:1: user \"alice\": Apache MD5 ($apr1$) hashes are not accepted: use bcrypt (htpasswd -nB USER), SHA-crypt (htpasswd -n2 USER), {SHA256}base64 or sha256:hex",
		"alice:" + sha1 + "\n":  "SHA-1 ({SHA}) hashes are not accepted",
		"alice:$1$salt$hash\n":  "MD5-crypt ($1$) hashes are not accepted",
		"alice:$6$salt$hash\n":  "not a SHA-crypt hash: the hash after the salt must be 86 characters of ./0-9A-Za-z",
		"alice:$5$salt\n":       "not a SHA-crypt hash: no $ between the salt and the hash",
		"alice:$5$" + strings.Repeat("s", 17) + "$" + strings.Repeat("a", 43) + "\n": "the salt is longer than 16 characters",
		"alice:$5$rounds=999$salt$" + strings.Repeat("a", 43) + "\n":                 "rounds=999 is outside 1000 to 2000000",
		"alice:$6$rounds=999999999$salt$" + strings.Repeat("a", 86) + "\n":           "rounds=999999999 is outside 1000 to 2000000",
		"alice:$5$rounds=01000$salt$" + strings.Repeat("a", 43) + "\n":               "rounds=01000 is not a number of rounds",
		"alice:$5$rounds=x$salt$" + strings.Repeat("a", 43) + "\n":                   "rounds=x is not a number of rounds",
		"alice:$5$salt$" + strings.Repeat("a", 42) + "!\n":                           "must be 43 characters",
		"alice:abJnggxhB/yWI\n": "crypt(3) DES or plain-text hashes are not accepted",
		"alice:secret\n":        "plain-text or unknown hashes are not accepted",
		"\n\nalice\n":           "htpasswd:3: not a user:hash line",
		":{SHA256}x\n":          "a user name is empty",
		"alice:$2y$05$short\n":  "not a bcrypt hash",
		"alice:{SHA256}AAAA\n":  "{SHA256} must be followed by the base64 of 32 bytes",
		"alice:sha256:abc\n":    "sha256: must be followed by 64 hex digits",
		"alice:sha256:" + strings.Repeat("0", 64) + "\nalice:sha256:" + strings.Repeat("1", 64) + "\n": "htpasswd:2: user \"alice\" is also on line 1",
		"alice:$2a$17$" + strings.Repeat("a", 53) + "\n":                                               "bcrypt cost 17 is above 16",
	} {
		_, err := parseHtpasswd("htpasswd", []byte(content))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	f := func(policies, want string) {
		t.Helper()
		_, err := compile(t, policies)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", policies, err, want)
		}
	}
	f("- http-basic-authentication-flex: {username: chris}", "gw.yaml:12:43: http-basic-authentication-flex: password is required")
	f("- http-basic-authentication-flex: {password: x}", "gw.yaml:12:43: http-basic-authentication-flex: username is required")
	f("- http-basic-authentication-flex", "username is required")
	f("- http-basic-authentication-flex: {username: a, password: b, realm: x}", `unknown parameter "realm"; known parameters: password, username`)
	f("- http-basic-authentication: {}", "no users: give username and password")
	f("- http-basic-authentication: {password: x}", "gw.yaml:12:49: http-basic-authentication: password needs a username")
	f("- http-basic-authentication: {username: a}", "user \"a\" has no password")
	f(`- http-basic-authentication: {username: a, password: b, realm: 'say "hi"'}`, `realm: "say \"hi\"": use printable ASCII without`)
	f("- http-basic-authentication: {username: 'a:b', password: b}", "has a ':'")
	f("- http-basic-authentication: {users: [{username: a, password: b, passwordHash: 'sha256:00'}]}", `user "a" has both password and passwordHash`)
	f("- http-basic-authentication: {users: [{username: a, passwordHash: '$apr1$x$y'}]}", `passwordHash of "a": Apache MD5 ($apr1$) hashes are not accepted`)
	f("- http-basic-authentication: {username: a, password: b, users: [{username: a, password: c}]}", `user "a" is also given at line 12`)
	f("- http-basic-authentication: {username: a, password: b, htpasswdFile: /nonexistent/htpasswd}", "gw.yaml:12:79: http-basic-authentication: htpasswdFile: cannot read htpasswdFile: open /nonexistent/htpasswd: no such file or directory")

	// Validation alone (flexgate validate in CI, without the mounted
	// secret) warns of the file and goes on.
	cfg, _ := chaintest.Load(t, chaintest.Gateway("        - http-basic-authentication: {htpasswdFile: /nonexistent/htpasswd}"))
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Message, "htpasswdFile /nonexistent/htpasswd cannot be read here") {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

// TestReloadReadsTheFileAgain: a changed htpasswd file gives a new instance
// on the next reload; an unchanged one keeps the instance (and its cache).
func TestReloadReadsTheFileAgain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	write := func(pass string) {
		sum := sha256.Sum256([]byte(pass))
		if err := os.WriteFile(file, []byte(fmt.Sprintf("alice:sha256:%x\n", sum)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("old")
	doc := chaintest.Gateway("        - http-basic-authentication: {htpasswdFile: " + file + "}")
	first, _, err := chaintest.Compile(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	same, _, err := chaintest.CompileWith(t, doc, chaintest.Options{Old: first})
	if err != nil || same.Chains[0].Policies[0].Policy != first.Chains[0].Policies[0].Policy {
		t.Fatalf("an unchanged file: %v, instance kept %v", err, err == nil && same.Chains[0].Policies[0].Policy == first.Chains[0].Policies[0].Policy)
	}
	write("new")
	next, _, err := chaintest.CompileWith(t, doc, chaintest.Options{Old: same})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{c: next.Chains[0]}
	if o := f.do("Authorization", basic("alice", "new")); o.rej != nil {
		t.Errorf("the new password after the reload: %v", o.rej)
	}
	if o := f.do("Authorization", basic("alice", "old")); o.rej == nil {
		t.Error("the old password after the reload passed")
	}
}

func TestSuccessDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	sum := sha256.Sum256([]byte("two"))
	f := mustCompile(t, fmt.Sprintf(`- http-basic-authentication:
    users:
      - {username: plain, password: one}
      - {username: sha, passwordHash: "sha256:%x"}
      - {username: bcrypt, passwordHash: "%s"}
      - {username: "Åsa", password: "é"}
      - {username: crypt, passwordHash: "%s"}`, sum, bcryptOf(t, "three"), shaCryptVectors[1].hash))
	for _, creds := range []string{basic("plain", "one"), basic("sha", "two"), basic("bcrypt", "three"), basic("Åsa", "é"),
		basic("crypt", shaCryptVectors[1].password)} {
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		ex.Prepare(f.c)
		run := func() {
			ctx.Request.Header.Set("Authorization", creds)
			if rej := f.c.RunRequest(ctx, ex); rej != nil {
				t.Fatal(rej)
			}
		}
		run()
		if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", creds, allocs)
		}
		chain.ReleaseExchange(ex)
	}
}

// TestParseBasicReadsOnlyBase64: encoding/base64 would skip line breaks
// inside the credentials; parseBasic refuses them, as any byte outside
// the alphabet.
func TestParseBasicReadsOnlyBase64(t *testing.T) {
	var buf [maxDecoded]byte
	for _, v := range []string{"Basic YWxpY2U6\nd29uZGVybGFuZA==", "Basic YWxpY2U6\r\nd29uZGVybGFuZA==", "Basic YWxpY2U6d29uZGVybGFuZA==\n",
		"Basic YWxpY2U6\td29uZGVybGFuZA==", "Basic YWxpY2U6d29uZGVybGFuZA== "} {
		if name, pass, ok := parseBasic([]byte(v), buf[:]); ok {
			t.Errorf("%q: read %q, %q", v, name, pass)
		}
	}
	if name, pass, ok := parseBasic([]byte("Basic YWxpY2U6d29uZGVybGFuZA=="), buf[:]); !ok || string(name) != "alice" || string(pass) != "wonderland" {
		t.Errorf("plain credentials: %q %q %v", name, pass, ok)
	}
}

// FuzzParseBasic holds parseBasic to net/http's reading of Basic
// credentials (which takes exactly one space after the scheme).
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{basic("a", "b"), "Basic Og==", "basic YTpiOmM=", "Basic", "Basic  YTpi", "Bearer x", basic("", "x"), "Basic YTpi\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var buf [maxDecoded]byte
		name, pass, ok := parseBasic([]byte(v), buf[:])
		// net/http takes one space; parseBasic, as RFC 9110, any number.
		if isBasic([]byte(v)) && len(v) > 6 {
			v = v[:6] + strings.TrimLeft(v[6:], " ")
		}
		req := http.Request{Header: http.Header{"Authorization": {v}}}
		wantName, wantPass, wantOK := req.BasicAuth()
		if len(v) > maxDecoded*4/3 {
			return // past maxDecoded parseBasic refuses on purpose
		}
		if strings.ContainsAny(v, "\r\n") {
			if ok {
				t.Errorf("parseBasic(%q) reads credentials across a line break", v)
			}
			return // encoding/base64, and so net/http, skip them
		}
		if ok != wantOK || string(name) != wantName || string(pass) != wantPass {
			t.Errorf("parseBasic(%q) = %q, %q, %v; net/http says %q, %q, %v", v, name, pass, ok, wantName, wantPass, wantOK)
		}
	})
}

// FuzzHtpasswd: whatever a file holds, parsing does not panic, and what it
// accepts is a user with a hash of an accepted kind.
func FuzzHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$" + strings.Repeat("a", 53) + "\n# c\nbob:sha256:" + strings.Repeat("0", 64)))
	f.Add([]byte("x:{SHA256}" + base64.StdEncoding.EncodeToString(make([]byte, 32))))
	f.Add([]byte("a:$apr1$x$y\r\n"))
	for _, v := range shaCryptVectors {
		f.Add([]byte("u:" + v.hash + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := parseHtpasswd("f", data)
		if err != nil {
			return
		}
		for _, e := range list {
			c := e.cred.crypt
			if checkUsername(e.name) != nil || e.cred.kind == kindPlain || e.cred.kind == kindBcrypt && e.cred.cost > maxCost ||
				e.cred.kind == kindSHACrypt && (c.rounds < shaCryptMinRounds || c.rounds > shaCryptMaxRounds ||
					len(c.hash) > len("$6$rounds=2000000$")+shaCryptMaxSalt+1+86) {
				t.Fatalf("accepted %+v", e)
			}
		}
	})
}

// TestHtpasswdFileBesideTheConfig: a relative htpasswdFile names a file
// beside the config file that names it, wherever the gateway runs from,
// as certFile and specFile do.
func TestHtpasswdFileBesideTheConfig(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("pw"))
	if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(fmt.Sprintf("alice:sha256:%x\n", sum)), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(chaintest.Gateway("        - http-basic-authentication: {htpasswdFile: users.htpasswd}")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	f := fixture{c: chaintest.CompileFile(t, path).Chains[0]}
	if o := f.do("Authorization", basic("alice", "pw")); o.rej != nil {
		t.Errorf("alice from the file beside the config: %v", o.rej)
	}
}

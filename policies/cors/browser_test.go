package cors_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// chromium finds the browser: $FLEXGATE_CHROMIUM, or chromium (Debian's
// package) or another Chromium-based browser on the PATH. Without one the
// test is skipped, saying so; CI installs chromium (.ci/run), so there it
// runs.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLEXGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("SKIPPED: no Chromium on the PATH, so CORS is not exercised from a real browser: apt-get install chromium (or set FLEXGATE_CHROMIUM to a Chromium-based browser)")
	return ""
}

// report is what a test page found.
type report struct {
	Page   string `json:"page"`
	Case   string `json:"case"`
	Status int    `json:"status"`
	Header string `json:"header"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// page is the script of a test page: it makes its fetches to the gateway,
// posts each result back to its own server, and then goes to next.
const page = `<!doctype html><title>cors test</title><script>
const gw = %q, next = %q, page = %q;
async function attempt(name, init) {
  const out = {page, case: name};
  try {
    const r = await fetch(gw + "/orders/7", init);
    out.status = r.status;
    out.header = r.headers.get("X-Request-Id") || "";
    out.body = await r.text();
  } catch (e) {
    out.error = String(e);
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(out)});
}
(async () => {
  await attempt("put", {method: "PUT", credentials: "include",
    headers: {"Content-Type": "application/json", "X-Token": "t"}, body: "{}"});
  await attempt("get", {credentials: "include"});
  if (next) location.href = next;
})();
</script>`

// servePage starts an origin on 127.0.0.1 that serves the test page (and
// a cookie for 127.0.0.1, which the browser sends to the gateway's port
// too) and forwards the page's reports.
func servePage(t *testing.T, ln net.Listener, gw, next, name string, reports chan<- report) {
	t.Helper()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "s-" + name, Path: "/", SameSite: http.SameSiteLaxMode})
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, page, gw, next, name)
		case "/report":
			var rep report
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Errorf("report %q: %v", b, err)
			}
			select {
			case reports <- rep:
			default:
				t.Errorf("unexpected report %+v", rep)
			}
		default:
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestBrowser runs real Chromium: a page of an allowed origin makes a
// credentialed PUT (preflighted: JSON and a custom header) and GET to the
// gateway, another port and so another origin, and reads the answers and
// the exposed header; the same page from an origin the policy does not
// list cannot, and its PUT never leaves the browser.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	allowedLn, deniedLn := listen(t), listen(t)
	allowed, denied := "http://"+allowedLn.Addr().String(), "http://"+deniedLn.Addr().String()
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: browser
spec:
  routes:
    - id: orders
      path: ["/orders/*"]
      methods: [GET, PUT]
      upstream:
        url: "%s"
      policies:
        - cors:
            origins: ["%s"]
            methods: [GET, PUT]
            headers: [Content-Type, X-Token]
            exposedHeaders: [X-Request-Id]
            credentials: true
`, up.URL, allowed))
	reports := make(chan report, 4)
	servePage(t, allowedLn, gw.URL, denied+"/", "allowed", reports)
	servePage(t, deniedLn, gw.URL, "", "denied", reports)

	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-crash-reporter",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), allowed+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// The browser and every process it started, by its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()

	got := map[string]report{}
	deadline := time.After(60 * time.Second)
	for len(got) < 4 {
		select {
		case r := <-reports:
			got[r.Page+"/"+r.Case] = r
		case err := <-exited:
			t.Fatalf("chromium exited (%v) after %d reports:\n%s", err, len(got), out.String())
		case <-deadline:
			t.Fatalf("chromium did not report within 60 s (got %v):\n%s", got, out.String())
		}
	}
	for _, c := range []string{"put", "get"} {
		r := got["allowed/"+c]
		if r.Error != "" || r.Status != 200 || r.Body != `{"ok":true}` || r.Header == "" {
			t.Errorf("allowed origin, %s: %+v", c, r)
		}
		if r := got["denied/"+c]; r.Error == "" || r.Status != 0 {
			t.Errorf("disallowed origin, %s: the page read the answer: %+v", c, r)
		}
	}
	var puts, gets int
	for _, r := range up.Requests() {
		switch r.Method {
		case "PUT":
			puts++
			if r.Header["Cookie"] != "session=s-allowed" {
				t.Errorf("the credentialed PUT came without the cookie: %v", r.Header)
			}
		case "GET":
			gets++
		case "OPTIONS":
			t.Errorf("a preflight reached the upstream: %+v", r)
		}
	}
	// The disallowed origin's PUT stops at its preflight; its GET (a
	// simple request) is sent, but the page cannot read the answer.
	if puts != 1 || gets != 2 {
		t.Errorf("the upstream saw %d PUT and %d GET, want 1 and 2", puts, gets)
	}
}

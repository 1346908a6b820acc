package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadListenerTLSSettings(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", head+`
  listeners:
    - name: mtls
      port: 8443
      tls:
        certificates: [{certFile: tls.crt, keyFile: tls.key}]
        minVersion: "1.2"
        maxVersion: "1.2"
        alpn: [h2, http/1.1]
        ciphers: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]
        clientCAFile: ca.crt
        requireClientCertificate: true
        sessionTicketKeys: [keys/new.key, /etc/keys/old.key]
  routes:
    - {id: r, path: /x, upstream: {url: http://b}}
`)
	dir := filepath.Dir(cfg.Sources[0].Path)
	tl := cfg.Listeners[0].TLS
	if tl.MinVersion != "1.2" || tl.MaxVersion != "1.2" || strings.Join(tl.ALPN, ",") != "h2,http/1.1" ||
		strings.Join(tl.Ciphers, ",") != "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" ||
		tl.ClientCAFile != filepath.Join(dir, "ca.crt") || !tl.RequireClientCert {
		t.Errorf("tls = %+v", tl)
	}
	if k := tl.SessionTicketKeys; len(k) != 2 || k[0].Path != filepath.Join(dir, "keys/new.key") || k[1].Path != "/etc/keys/old.key" ||
		k[0].Pos.String() != cfg.Sources[0].Path+":18:29" {
		t.Errorf("sessionTicketKeys = %+v, want the files in order, resolved against the config's directory, with their positions", k)
	}
	v := cfg.Redacted().Listeners[0].TLS
	if v.MaxVersion != "1.2" || len(v.Ciphers) != 2 || v.ClientCAFile != tl.ClientCAFile || !v.RequireClientCertificate ||
		strings.Join(v.SessionTicketKeys, ",") != tl.SessionTicketKeys[0].Path+",/etc/keys/old.key" {
		t.Errorf("admin view of tls = %+v", v)
	}
}

func TestLoadListenerTLSErrors(t *testing.T) {
	listener := func(tls string) string {
		return head + "  listeners:\n    - name: a\n      port: 443\n      tls:\n        certificates: [{certFile: c, keyFile: k}]\n" + tls
	}
	cases := []struct {
		name  string
		src   string
		pos   string
		words []string
	}{
		{"unknown field", listener("        clientCA: {file: ca.crt}\n"), "a.yaml:11:9",
			[]string{`unknown field "clientCA"`, "clientCAFile", "requireClientCertificate", "ciphers", "alpn", "maxVersion"}},
		{"maxVersion unknown", listener("        maxVersion: \"1.4\"\n"), "a.yaml:11:21",
			[]string{`maxVersion "1.4"`, `"1.2" or "1.3"`}},
		{"maxVersion below minVersion", listener("        minVersion: \"1.3\"\n        maxVersion: \"1.2\"\n"), "a.yaml:10:9",
			[]string{"maxVersion 1.2 is below minVersion 1.3"}},
		{"unknown cipher", listener("        ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ECDHE-RSA-AES128-GCM-SHA256]\n"), "a.yaml:11:58",
			[]string{`cipher "ECDHE-RSA-AES128-GCM-SHA256" is not supported`, "IANA name", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "}},
		{"TLS 1.2 ciphers with minVersion 1.3", listener("        minVersion: \"1.3\"\n        ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"),
			"a.yaml:10:9", []string{"TLS 1.2 suites", "minVersion is 1.3", "not configurable"}},
		{"only TLS 1.3 ciphers", listener("        ciphers: [TLS_AES_128_GCM_SHA256]\n"), "a.yaml:10:9",
			[]string{"no TLS 1.2 suite", "no TLS 1.2 client could connect"}},
		{"unknown alpn", listener("        alpn: [spdy/3]\n"), "a.yaml:11:16",
			[]string{`alpn protocol "spdy/3"`, "http/1.1", "h2 is accepted but not offered"}},
		{"alpn h2 only", listener("        alpn: [h2]\n"), "a.yaml:10:9",
			[]string{"only h2", "serves HTTP/1.1", "add http/1.1"}},
		{"required client certificate without CA", listener("        requireClientCertificate: true\n"), "a.yaml:10:9",
			[]string{"requires client certificates", "clientCAFile"}},
		{"requireClientCertificate not a boolean", listener("        requireClientCertificate: yes please\n"), "a.yaml:11:35",
			[]string{"requireClientCertificate must be true or false"}},
		{"session ticket key file named twice", listener("        sessionTicketKeys: [a.key, b.key, ./a.key]\n"), "a.yaml:11:43",
			[]string{"sessionTicketKeys names ./a.key twice", "a.yaml:11:29); name each key file once", "name each key file once"}},
		{"no session ticket key file", listener("        sessionTicketKeys: []\n"), "a.yaml:11:28",
			[]string{"sessionTicketKeys is empty", "name the key files", "remove it"}},
		{"session ticket keys not a list", listener("        sessionTicketKeys: {file: a.key}\n"), "a.yaml:11:28",
			[]string{"sessionTicketKeys must be a list of strings"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectOne(t, loadErrors(t, "a.yaml", c.src), c.pos, c.words...)
		})
	}
}

// TestTLSValidate: the rules every loader of a listener's TLS applies,
// for TLS built by another loader than kind: Gateway's (a Flex tls policy
// with inline certificates).
func TestTLSValidate(t *testing.T) {
	cert := []Certificate{{CertPEM: []byte("c"), KeyPEM: []byte("k")}}
	for _, c := range []struct {
		tls  TLS
		want string
	}{
		{TLS{Certificates: cert}, ""},
		{TLS{Certificates: cert, ALPN: []string{"h2", "http/1.1"}, MinVersion: "1.3", Ciphers: []string{"TLS_AES_256_GCM_SHA384"}}, ""},
		{TLS{Certificates: cert, ClientCAPEM: []byte("ca"), RequireClientCert: true}, ""},
		{TLS{Certificates: []Certificate{{CertPEM: []byte("c")}}}, "needs both the PEM certificate chain and its private key"},
		{TLS{Certificates: []Certificate{{CertPEM: []byte("c"), KeyPEM: []byte("k"), CertFile: "f"}}}, "both in files and inline"},
		{TLS{Certificates: cert, ClientCAPEM: []byte("ca"), ClientCAFile: "ca.crt"}, "both inline and in clientCAFile"},
		{TLS{Certificates: cert, MaxVersion: "1.0"}, `maxVersion "1.0" is not supported`},
		{TLS{Certificates: cert, Ciphers: []string{"RC4"}}, `cipher "RC4" is not supported`},
		{TLS{Certificates: cert, Mode: "PASSTHROUGH"}, "only TERMINATE"},
		{TLS{Certificates: cert, SessionTicketKeys: []KeyFile{{Path: "a.key"}, {Path: "b.key"}}}, ""},
		{TLS{Certificates: cert, SessionTicketKeys: []KeyFile{{Path: "a.key"}, {Path: "a.key"}}}, "names a.key twice"},
		{TLS{Certificates: cert, SessionTicketKeys: []KeyFile{{}}}, "sessionTicketKeys has an empty entry"},
		{TLS{}, "tls has no certificate"},
	} {
		err := c.tls.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.tls, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want %q", c.tls, err, c.want)
		}
	}
}

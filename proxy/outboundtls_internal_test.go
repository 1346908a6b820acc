package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/config"
)

// selfSigned returns a fresh self-signed certificate (a CA of its own) and
// its key, as PEM.
func selfSigned(t *testing.T, commonName string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

// TestTrustSeparatesUpstreamsAndPools: upstreams whose trust or client
// certificate, written in the config, differ are different upstreams with
// different connection pools; where a setting was written (its Pos) does
// not matter, and no key holds a private key.
func TestTrustSeparatesUpstreamsAndPools(t *testing.T) {
	ca, _ := selfSigned(t, "ca")
	other, _ := selfSigned(t, "other")
	crt, key := selfSigned(t, "gateway")
	base := config.Upstream{Targets: []config.Target{{Scheme: "https", Host: "127.0.0.1:8443", Weight: 1}},
		ConnectTimeout: time.Second, ResponseTimeout: time.Second, MaxConns: 16}
	with := func(f func(u *config.Upstream)) *config.Upstream {
		u := base
		f(&u)
		return &u
	}
	variants := map[string]*config.Upstream{
		"system roots": &base,
		"ca":           with(func(u *config.Upstream) { u.CAPEM = string(ca) }),
		"other ca":     with(func(u *config.Upstream) { u.CAPEM = string(other) }),
		"ca and certificate": with(func(u *config.Upstream) {
			u.CAPEM, u.ClientCert = string(ca), &config.Certificate{CertPEM: crt, KeyPEM: key}
		}),
	}
	o := upstreamOptions{}
	upstreams, pools := map[string]string{}, map[string]string{}
	for name, u := range variants {
		uk, pk := upstreamKey(u, o), poolSpec{scheme: "https", addr: "127.0.0.1:8443", host: "127.0.0.1:8443", u: u}.key(0)
		secret := base64.StdEncoding.EncodeToString(key)[40:80]
		if strings.Contains(uk+pk, "PRIVATE KEY") || strings.Contains(uk+pk, secret) || strings.Contains(uk+pk, string(key[40:80])) {
			t.Errorf("%s: a key holds the private key:\n%s\n%s", name, uk, pk)
		}
		if was, dup := upstreams[uk]; dup {
			t.Errorf("%s and %s are one upstream", name, was)
		}
		if was, dup := pools[pk]; dup {
			t.Errorf("%s and %s share a pool", name, was)
		}
		upstreams[uk], pools[pk] = name, name
	}
	moved := *variants["ca and certificate"]
	cc := *moved.ClientCert
	cc.Pos = config.Pos{File: "elsewhere.yaml", Line: 9, Col: 3}
	moved.ClientCert = &cc
	if upstreamKey(&moved, o) != upstreamKey(variants["ca and certificate"], o) {
		t.Error("where the client certificate is written changes the upstream's key")
	}
}

// TestUpstreamTLSChecks: trust written twice, a trusted CA PEM without a
// certificate and a client certificate that does not go with its key are
// errors at the upstream's place, before anything starts.
func TestUpstreamTLSChecks(t *testing.T) {
	ca, _ := selfSigned(t, "ca")
	crt, _ := selfSigned(t, "gateway")
	_, otherKey := selfSigned(t, "other")
	base := config.Upstream{Targets: []config.Target{{Scheme: "https", Host: "svc:443", Weight: 1}}, Pos: config.Pos{File: "s.yaml", Line: 3, Col: 12}}
	for _, c := range []struct {
		name string
		set  func(u *config.Upstream)
		want string
	}{
		{"both", func(u *config.Upstream) { u.CAPEM, u.CAFile = string(ca), "/etc/ca.pem" }, "has both trusted CA PEM and caFile; give one"},
		{"no certificate", func(u *config.Upstream) { u.CAPEM = "not a certificate" }, "trusted CA holds no PEM certificate"},
		{"mismatched key", func(u *config.Upstream) { u.ClientCert = &config.Certificate{CertPEM: crt, KeyPEM: otherKey} },
			"client certificate: tls: private key does not match public key"},
	} {
		u := base
		c.set(&u)
		err := checkUpstream(&u)
		if err == nil || !strings.HasPrefix(err.Error(), "s.yaml:3:12: upstream https://svc:443: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
		if _, err := newUpstream(&u, upstreamOptions{series: newSeriesRefs(nil), pools: newPoolRegistry()}, nil); err == nil {
			t.Errorf("%s: the upstream was built", c.name)
		}
	}
	u := base
	u.CAPEM, u.ClientCert = string(ca), &config.Certificate{CertPEM: crt, KeyPEM: otherKey}
	u.Targets = []config.Target{{Scheme: "http", Host: "svc:80", Weight: 1}}
	if err := checkUpstream(&u); err != nil {
		t.Errorf("TLS settings of an http upstream are not used, and not checked: %v", err)
	}
}

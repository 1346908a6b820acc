package cabundle_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/proxy/cabundle"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestFromPEM: a bundle written in the config verifies the certificates
// its CAs issued, for the name asked, and no others; text without a
// certificate is refused; Reload leaves it as it is.
func TestFromPEM(t *testing.T) {
	ca, other := proxytest.NewCA(t, "ca"), proxytest.NewCA(t, "other")
	b, err := cabundle.FromPEM(ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	if b.File() != "" {
		t.Errorf("File() = %q", b.File())
	}
	state := func(issuer *proxytest.CA) tls.ConnectionState {
		crt, _ := issuer.Issue(t, "upstream")
		blk, _ := pem.Decode(crt)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
	}
	b.Reload()
	if err := b.Verifier("localhost")(state(ca)); err != nil {
		t.Errorf("a certificate of the CA: %v", err)
	}
	if err := b.Verifier("localhost")(state(other)); err == nil {
		t.Error("a certificate of another CA is accepted")
	}
	if err := b.Verifier("elsewhere.example")(state(ca)); err == nil {
		t.Error("a certificate for another name is accepted")
	}
	for _, bad := range []string{"", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := cabundle.FromPEM([]byte(bad)); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
			t.Errorf("%q: %v", bad, err)
		}
		if err := cabundle.CheckPEM([]byte(bad)); err == nil {
			t.Errorf("CheckPEM(%q) passes", bad)
		}
	}
}

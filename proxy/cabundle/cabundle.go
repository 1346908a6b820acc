// Package cabundle loads PEM trust bundles that verify the gateway's TLS
// peers (https upstreams, an introspection server) and keeps them current:
// a bundle rotated on disk (cert-manager's trust-manager, a renewed
// Secret) is used from the next handshake on, without a restart.
package cabundle

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Load reads a PEM bundle of one or more certificates.
func Load(file string) (*x509.CertPool, error) {
	pool, _, err := load(file)
	return pool, err
}

func load(file string) (*x509.CertPool, [sha256.Size]byte, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("cannot read caFile %s: %w", file, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, [sha256.Size]byte{}, fmt.Errorf("caFile %s holds no PEM certificate: give a bundle of -----BEGIN CERTIFICATE----- blocks", file)
	}
	return pool, sha256.Sum256(pem), nil
}

// Bundle is a trust bundle read from a file and re-read by Reload. Safe for
// concurrent use.
type Bundle struct {
	file   string
	pool   atomic.Pointer[x509.CertPool]
	mu     sync.Mutex // serialises Reload
	digest [sha256.Size]byte
}

// New reads file; an unreadable or empty bundle is an error.
func New(file string) (*Bundle, error) {
	pool, digest, err := load(file)
	if err != nil {
		return nil, err
	}
	b := &Bundle{file: file, digest: digest}
	b.pool.Store(pool)
	return b, nil
}

// File is the bundle's path.
func (b *Bundle) File() string { return b.file }

// Reload reads the file again and serves its certificates from now on
// when they changed. On error the bundle in use stays.
func (b *Bundle) Reload() (changed bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pool, digest, err := load(b.file)
	if err != nil {
		return false, err
	}
	if bytes.Equal(digest[:], b.digest[:]) {
		return false, nil
	}
	b.digest = digest
	b.pool.Store(pool)
	return true, nil
}

// Verifier returns the check of a server's certificate chain against the
// bundle in use at each handshake, for tls.Config.VerifyConnection with
// InsecureSkipVerify set: Go's own verification reads RootCAs once, which
// a rotated bundle could not change. serverName is the name the
// certificate must be valid for (a DNS name or an IP address).
func (b *Bundle) Verifier(serverName string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &tls.CertificateVerificationError{Err: errors.New("the server sent no certificate")}
		}
		opts := x509.VerifyOptions{Roots: b.pool.Load(), DNSName: serverName, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
}

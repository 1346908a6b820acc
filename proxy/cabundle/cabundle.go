// Package cabundle loads PEM trust bundles that verify the gateway's TLS
// peers (https upstreams, an introspection server) and keeps them current:
// a bundle rotated on disk (cert-manager's trust-manager, a renewed
// Secret) verifies the next handshake, without a reload or a restart. A
// bundle written in the config itself (FromPEM) changes with the config.
package cabundle

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flexgate/flexgate/internal/userfile"
)

func load(file string) (*x509.CertPool, [sha256.Size]byte, error) {
	pem, err := userfile.Read(file)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("cannot read caFile %s: %w", file, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, [sha256.Size]byte{}, fmt.Errorf("caFile %s holds no PEM certificate: give a bundle of -----BEGIN CERTIFICATE----- blocks", file)
	}
	return pool, sha256.Sum256(pem), nil
}

// Check reports whether file holds a usable bundle, as New would.
func Check(file string) error {
	_, _, err := load(file)
	return err
}

func parse(pemText []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemText) {
		return nil, errors.New("trusted CA holds no PEM certificate: give a bundle of -----BEGIN CERTIFICATE----- blocks")
	}
	return pool, nil
}

// CheckPEM reports whether pemText is a usable bundle, as FromPEM would.
func CheckPEM(pemText []byte) error {
	_, err := parse(pemText)
	return err
}

// Bundle is a trust bundle read from a file, or written in the config.
// The file is looked at again at most once a second when a handshake needs
// the bundle, and on Reload. Safe for concurrent use.
type Bundle struct {
	file    string // "": written in the config, never read again
	log     *slog.Logger
	pool    atomic.Pointer[x509.CertPool]
	checked atomic.Int64 // unix nanoseconds of the last look at the file

	mu      sync.Mutex // serialises Reload
	digest  [sha256.Size]byte
	lastErr string
}

// checkEvery bounds how often handshakes make the bundle look at its file.
const checkEvery = time.Second

// New reads file; an unreadable or empty bundle is an error. Reloads are
// logged to log (nil: not logged).
func New(file string, log *slog.Logger) (*Bundle, error) {
	pool, digest, err := load(file)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bundle{file: file, log: log, digest: digest}
	b.pool.Store(pool)
	b.checked.Store(time.Now().UnixNano())
	return b, nil
}

// FromPEM returns the bundle of the certificates in pemText, written in
// the config rather than in a file (a Flex tls-outbound policy's
// trustedCA): it changes only with the config, so Reload leaves it as it
// is. Verifying with it works as with a bundle from a file.
func FromPEM(pemText []byte) (*Bundle, error) {
	pool, err := parse(pemText)
	if err != nil {
		return nil, err
	}
	b := &Bundle{log: slog.New(slog.DiscardHandler)}
	b.pool.Store(pool)
	return b, nil
}

// File is the bundle's path; "" for one written in the config.
func (b *Bundle) File() string { return b.file }

// Reload reads the file again and serves its certificates from now on
// when they changed. A file that no longer loads is logged, once per
// distinct error, and the bundle in use stays.
func (b *Bundle) Reload() {
	if b.file == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checked.Store(time.Now().UnixNano())
	pool, digest, err := load(b.file)
	if err != nil {
		if msg := err.Error(); msg != b.lastErr {
			b.log.Error("trust bundle reload failed; the bundle in use keeps verifying", "caFile", b.file, "error", msg)
			b.lastErr = msg
		}
		return
	}
	b.lastErr = ""
	if bytes.Equal(digest[:], b.digest[:]) {
		return
	}
	b.digest = digest
	b.pool.Store(pool)
	b.log.Info("trust bundle reloaded", "caFile", b.file)
}

// current is the pool for a handshake starting now.
func (b *Bundle) current() *x509.CertPool {
	if b.file == "" {
		return b.pool.Load()
	}
	now := time.Now().UnixNano()
	if last := b.checked.Load(); now-last >= int64(checkEvery) && b.checked.CompareAndSwap(last, now) {
		b.Reload()
	}
	return b.pool.Load()
}

// Verifier returns the check of a server's certificate chain against the
// bundle current at each handshake, for tls.Config.VerifyConnection with
// InsecureSkipVerify set: Go's own verification reads RootCAs once, which
// a rotated bundle could not change. serverName is the name the
// certificate must be valid for (a DNS name or an IP address).
func (b *Bundle) Verifier(serverName string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &tls.CertificateVerificationError{Err: errors.New("the server sent no certificate")}
		}
		opts := x509.VerifyOptions{Roots: b.current(), DNSName: serverName, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
}

// ClientConfig returns a TLS client config that verifies serverName against
// the bundle current at each handshake.
func (b *Bundle) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
		// Verified in VerifyConnection, against the bundle of the moment.
		InsecureSkipVerify: true, //nolint:gosec // see VerifyConnection
		VerifyConnection:   b.Verifier(serverName),
	}
}

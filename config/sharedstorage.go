package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SharedStorage is the state every replica of a gateway shares: the
// buckets of clusterizable rate limits. It is configured once per gateway,
// in `spec.sharedStorage` of a Gateway document; Flex Gateway's
// `kind: Configuration` resource, whose `spec.sharedStorage` has the same
// fields, maps onto the same type.
type SharedStorage struct {
	// Redis is the Redis (or Valkey) server, Sentinel set or Cluster
	// that holds the shared state.
	Redis *Redis
	// Pos is where sharedStorage was written.
	Pos Pos
}

// Redis says how to reach Redis. Exactly one of Address, Sentinel and
// Cluster is set.
type Redis struct {
	// Address is host:port of a standalone server.
	Address string
	// Username and Password authenticate (AUTH); both may be empty.
	Username string
	Password string
	// DB is the database number (SELECT); 0 with Cluster.
	DB int
	// Sentinel finds the master of a Sentinel-managed set.
	Sentinel *RedisSentinel
	// Cluster lists seed nodes of a Redis Cluster.
	Cluster *RedisCluster
	// TLS, when set, encrypts the connections.
	TLS *RedisTLS
}

// RedisSentinel is a Sentinel set: the sentinels to ask and the name of
// the master they monitor.
type RedisSentinel struct {
	Addresses  []string
	MasterName string
	// Password authenticates to the sentinels (not to the master).
	Password string
}

// RedisCluster is a Redis Cluster: some of its nodes (host:port), from
// which the client learns the others.
type RedisCluster struct {
	Addresses []string
}

// RedisTLS is how the connections to Redis are encrypted. Certificates
// and keys are PEM text, as Flex Gateway takes them (use `$env.NAME` to
// read them from a Secret).
type RedisTLS struct {
	// TrustedCA verifies the server; empty: the system's roots.
	TrustedCA string
	// Certificate and Key, both or neither, are the client certificate
	// chain and its private key; KeyPassphrase decrypts a legacy
	// encrypted PEM key.
	Certificate   string
	Key           string
	KeyPassphrase string
	// SkipValidation accepts any server certificate (testing only).
	SkipValidation bool
	// MinVersion and MaxVersion are "1.2" or "1.3"; defaults 1.2 and 1.3.
	MinVersion string
	MaxVersion string
	// ALPN protocols to offer.
	ALPN []string
	// Ciphers are IANA names of TLS 1.2 cipher suites; empty: Go's
	// defaults.
	Ciphers []string
}

// Mode names how the client finds Redis: "standalone", "sentinel" or
// "cluster".
func (r *Redis) Mode() string {
	switch {
	case r.Sentinel != nil:
		return "sentinel"
	case r.Cluster != nil:
		return "cluster"
	}
	return "standalone"
}

// Addresses are the addresses the client is given first: the server, the
// sentinels or the cluster's seed nodes.
func (r *Redis) Addresses() []string {
	switch {
	case r.Sentinel != nil:
		return r.Sentinel.Addresses
	case r.Cluster != nil:
		return r.Cluster.Addresses
	}
	return []string{r.Address}
}

// Config builds the tls.Config the connections use. Load has checked
// every part of t, so it fails only for a RedisTLS built in code.
func (t *RedisTLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13,
		InsecureSkipVerify: t.SkipValidation, NextProtos: t.ALPN}
	if t.TrustedCA != "" {
		pool, _, err := caPool(t.TrustedCA)
		if err != nil {
			return nil, fmt.Errorf("trustedCA: %w", err)
		}
		c.RootCAs = pool
	}
	if t.Certificate != "" || t.Key != "" {
		cert, err := keyPair(t.Certificate, t.Key, t.KeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	var ok bool
	if t.MinVersion != "" {
		if c.MinVersion, ok = tlsVersions[t.MinVersion]; !ok {
			return nil, fmt.Errorf("minVersion %q is not supported", t.MinVersion)
		}
	}
	if t.MaxVersion != "" {
		if c.MaxVersion, ok = tlsVersions[t.MaxVersion]; !ok {
			return nil, fmt.Errorf("maxVersion %q is not supported", t.MaxVersion)
		}
	}
	suites, err := TLS12Suites(t.Ciphers)
	if err != nil {
		return nil, err
	}
	c.CipherSuites = suites
	return c, nil
}

// TLS12Suites returns the ids of the TLS 1.2 cipher suites names, by IANA
// name (nil for none); a name that is none is an error. Safe for
// concurrent use.
func TLS12Suites(names []string) ([]uint16, error) {
	var ids []uint16
	for _, name := range names {
		id, tls13, ok := CipherSuite(name)
		if !ok || tls13 {
			return nil, fmt.Errorf("cipher %q is not a TLS 1.2 cipher suite flexgate supports", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// TLS12CipherSuiteNames lists the names of the TLS 1.2 suites CipherSuite
// knows, sorted: the suites an outbound connection may be limited to.
func TLS12CipherSuiteNames() []string {
	var names []string
	for _, n := range CipherSuiteNames() {
		if _, tls13, _ := CipherSuite(n); !tls13 {
			names = append(names, n)
		}
	}
	return names
}

// caPool reads PEM certificates into a pool and returns their subjects.
func caPool(text string) (*x509.CertPool, []string, error) {
	pool := x509.NewCertPool()
	var subjects []string
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("holds a PEM %q block; only CERTIFICATE blocks belong here", b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("holds a certificate that does not parse: %v", err)
		}
		pool.AddCert(cert)
		subjects = append(subjects, cert.Subject.String())
	}
	if len(subjects) == 0 {
		return nil, nil, errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return pool, subjects, nil
}

// keyPair reads a PEM certificate chain and its private key; passphrase
// decrypts a legacy encrypted PEM key (Proc-Type: 4,ENCRYPTED).
func keyPair(certPEM, keyPEM, passphrase string) (tls.Certificate, error) {
	key, err := decryptKey(keyPEM, passphrase)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair([]byte(certPEM), key)
	switch {
	case err != nil && passphrase != "":
		// A wrong passphrase can decrypt to garbage that passes the
		// padding check: the pair then fails to match.
		return tls.Certificate{}, errors.New("key cannot be decrypted with keyPassphrase, or is not the key of crt")
	case err != nil:
		return tls.Certificate{}, fmt.Errorf("crt and key are not a PEM certificate chain and its private key: %v", err)
	}
	return cert, nil
}

// decryptKey returns the PEM private key, decrypted with passphrase when it
// is a legacy encrypted PEM key.
func decryptKey(keyPEM, passphrase string) ([]byte, error) {
	key := []byte(keyPEM)
	b, _ := pem.Decode(key)
	switch {
	case b == nil:
		return nil, errors.New("key holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
	case b.Type == "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("key is an encrypted PKCS#8 key, which is not supported; " +
			"decrypt it (openssl pkcs8 -in key.pem -out plain.pem) and keep it in a Secret instead")
	//lint:ignore SA1019 Flex's keyPassphrase decrypts exactly these legacy keys
	case x509.IsEncryptedPEMBlock(b):
		if passphrase == "" {
			return nil, errors.New("key is encrypted; give its keyPassphrase")
		}
		//lint:ignore SA1019 as above
		der, err := x509.DecryptPEMBlock(b, []byte(passphrase))
		if err != nil {
			return nil, errors.New("key cannot be decrypted with keyPassphrase, or is not the key of crt")
		}
		return pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: der}), nil
	case passphrase != "":
		return nil, errors.New("keyPassphrase is given but the key is not encrypted; remove keyPassphrase")
	}
	return key, nil
}

// KeyPEM returns the client certificate's private key as PEM text,
// decrypted with KeyPassphrase when it is encrypted.
func (t *RedisTLS) KeyPEM() ([]byte, error) {
	if SkipInlinePEM {
		return []byte(t.Key), nil
	}
	return decryptKey(t.Key, t.KeyPassphrase)
}

// SkipInlinePEM leaves certificates, keys and CAs written inline (PEM
// text, often from the environment) unparsed at load, as certificate files
// are left unread: `flexgate validate --skip-cert-files` and
// `--without-secrets` set it, where the secrets are placeholders.
var SkipInlinePEM bool

// sharedStorage maps spec.sharedStorage (k is its key) and keeps it, or
// reports a different one set before. Flex's Configuration kind calls the
// same function with its spec.sharedStorage.
func (l *loader) sharedStorage(d *decoder, k, n *yaml.Node) {
	s := &SharedStorage{Pos: d.pos(k)}
	ok := d.mapping(n, "sharedStorage", map[string]field{
		"redis": func(_, v *yaml.Node) {
			var good bool
			s.Redis, good = d.redis(v)
			if !good {
				s.Redis = nil
			}
		},
	})
	if !ok || s.Redis == nil {
		if ok && len(resolve(n).Content) == 0 {
			d.errorf(n, "sharedStorage is empty; configure redis: {address: host:port} or remove sharedStorage")
		}
		return
	}
	if first := l.cfg.SharedStorage; first != nil {
		if !reflect.DeepEqual(first.Redis, s.Redis) {
			d.errorf(k, "sharedStorage differs from the one set at %s; a gateway has one shared storage: set it in one document only", first.Pos)
		}
		return
	}
	l.cfg.SharedStorage = s
}

// redis maps sharedStorage.redis.
func (d *decoder) redis(n *yaml.Node) (*Redis, bool) {
	r := &Redis{}
	ok := true
	good := func(g bool) { ok = ok && g }
	var addrNode, dbNode *yaml.Node
	var userKey, dbKey *yaml.Node
	alias := func(key **yaml.Node, k *yaml.Node) bool {
		if *key != nil {
			d.errorf(k, "%s and %s are two spellings of one field; keep one", (*key).Value, k.Value)
			ok = false
			return false
		}
		*key = k
		return true
	}
	username := func(k, v *yaml.Node) {
		if alias(&userKey, k) {
			r.Username, _ = d.str(v, "redis "+k.Value)
		}
	}
	db := func(k, v *yaml.Node) {
		if !alias(&dbKey, k) {
			return
		}
		dbNode = v
		n, g := d.wholeNumber(v, "redis "+k.Value, 0, math.MaxInt32, "")
		r.DB = int(n)
		good(g)
	}
	if !d.mapping(n, "redis", map[string]field{
		"address": func(_, v *yaml.Node) {
			addrNode = v
			var g bool
			r.Address, g = d.hostPort(v, "redis address")
			good(g)
		},
		"username": username,
		"user":     username,
		"password": func(_, v *yaml.Node) {
			var g bool
			r.Password, g = d.str(v, "redis password")
			good(g)
		},
		"db": db,
		"DB": db,
		"sentinel": func(_, v *yaml.Node) {
			var g bool
			r.Sentinel, g = d.sentinel(v)
			good(g)
		},
		"cluster": func(_, v *yaml.Node) {
			var g bool
			r.Cluster, g = d.cluster(v)
			good(g)
		},
		"tls": func(_, v *yaml.Node) {
			var g bool
			r.TLS, g = d.redisTLS(v)
			good(g)
		},
	}) {
		return nil, false
	}
	if !ok {
		return nil, false
	}
	modes := 0
	for _, set := range []bool{addrNode != nil, r.Sentinel != nil, r.Cluster != nil} {
		if set {
			modes++
		}
	}
	switch {
	case modes == 0:
		d.errorf(n, "redis has no address; give address: host:port for one server, sentinel: {addresses, masterName} for a Sentinel set, or cluster: {addresses} for a Redis Cluster")
		return nil, false
	case modes > 1:
		d.errorf(n, "redis gives more than one of address, sentinel and cluster; keep the one that describes your Redis")
		return nil, false
	case r.Cluster != nil && r.DB != 0:
		d.errorf(dbNode, "a Redis Cluster has only database 0; remove %s", dbKey.Value)
		return nil, false
	}
	return r, true
}

// hostPort reads host:port with a port in 1..65535.
func (d *decoder) hostPort(n *yaml.Node, what string) (string, bool) {
	s, ok := d.requiredStr(n, what)
	if !ok {
		return "", false
	}
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
		d.errorf(n, "%s %q must be host:port, e.g. redis.cache.svc:6379 (no scheme)", what, s)
		return "", false
	}
	return s, true
}

func (d *decoder) addresses(n *yaml.Node, what string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list of host:port, not %s", what, Describe(n))
		return nil, false
	}
	if len(n.Content) == 0 {
		d.errorf(n, "%s must list at least one host:port", what)
		return nil, false
	}
	var out []string
	ok := true
	for _, c := range n.Content {
		a, g := d.hostPort(resolve(c), what+" entry")
		ok = ok && g
		out = append(out, a)
	}
	return out, ok
}

func (d *decoder) sentinel(n *yaml.Node) (*RedisSentinel, bool) {
	s := &RedisSentinel{}
	ok := true
	var addrs, master *yaml.Node
	if !d.mapping(n, "redis sentinel", map[string]field{
		"addresses": func(_, v *yaml.Node) {
			addrs = v
			var g bool
			s.Addresses, g = d.addresses(v, "redis sentinel addresses")
			ok = ok && g
		},
		"masterName": func(_, v *yaml.Node) {
			master = v
			var g bool
			s.MasterName, g = d.requiredStr(v, "redis sentinel masterName")
			ok = ok && g
		},
		"password": func(_, v *yaml.Node) {
			var g bool
			s.Password, g = d.str(v, "redis sentinel password")
			ok = ok && g
		},
	}) {
		return nil, false
	}
	if addrs == nil {
		d.errorf(n, "redis sentinel has no addresses; list the sentinels, e.g. addresses: [sentinel-0.sentinel:26379]")
		ok = false
	}
	if master == nil {
		d.errorf(n, "redis sentinel has no masterName; give the name the sentinels monitor, e.g. masterName: mymaster")
		ok = false
	}
	return s, ok
}

func (d *decoder) cluster(n *yaml.Node) (*RedisCluster, bool) {
	c := &RedisCluster{}
	ok := true
	var addrs *yaml.Node
	if !d.mapping(n, "redis cluster", map[string]field{
		"addresses": func(_, v *yaml.Node) {
			addrs = v
			var g bool
			c.Addresses, g = d.addresses(v, "redis cluster addresses")
			ok = ok && g
		},
	}) {
		return nil, false
	}
	if addrs == nil {
		d.errorf(n, "redis cluster has no addresses; list some of its nodes, e.g. addresses: [redis-0.redis:6379, redis-1.redis:6379]")
		ok = false
	}
	return c, ok
}

// redisTLS maps sharedStorage.redis.tls; `tls: {}` turns TLS on with the
// defaults.
func (d *decoder) redisTLS(n *yaml.Node) (*RedisTLS, bool) {
	return d.tlsSettings(n, "redis tls", nil)
}

// tlsSettings maps TLS settings as Flex Gateway writes them (in
// sharedStorage.redis.tls and in its tls policies); what names them in
// messages ("redis tls"), extra adds fields of the caller's.
func (d *decoder) tlsSettings(n *yaml.Node, what string, extra map[string]func(key, val *yaml.Node)) (*RedisTLS, bool) {
	t := &RedisTLS{}
	if IsNull(n) {
		return t, true
	}
	ok := true
	good := func(g bool) { ok = ok && g }
	var minKey, maxKey, caNode, ciphersNode *yaml.Node
	version := func(key **yaml.Node, dst *string) field {
		return func(k, v *yaml.Node) {
			if *key != nil {
				d.errorf(k, "%s and %s are two spellings of one field; keep one", (*key).Value, k.Value)
				ok = false
				return
			}
			*key = k
			s, g := d.requiredStr(v, what+" "+k.Value)
			if g {
				if _, known := tlsVersions[s]; !known {
					d.errorf(v, "%s %s %q is not supported; use \"1.2\" or \"1.3\"", what, k.Value, s)
					g = false
				}
			}
			*dst = s
			good(g)
		}
	}
	fields := map[string]field{
		"trustedCA": func(_, v *yaml.Node) {
			caNode = v
			var g bool
			t.TrustedCA, g = d.requiredStr(v, what+" trustedCA")
			if g && !SkipInlinePEM {
				if _, _, err := caPool(t.TrustedCA); err != nil {
					d.errorf(v, "%s trustedCA %v; give the PEM text of the CA certificates (e.g. trustedCA: $env.CA_PEM)", what, err)
					g = false
				}
			}
			good(g)
		},
		"certificate": func(_, v *yaml.Node) {
			good(d.tlsCertificate(v, t, what))
		},
		"skipValidation": func(_, v *yaml.Node) {
			var g bool
			t.SkipValidation, g = d.boolean(v, what+" skipValidation")
			good(g)
		},
		"minversion": version(&minKey, &t.MinVersion),
		"minVersion": version(&minKey, &t.MinVersion),
		"maxversion": version(&maxKey, &t.MaxVersion),
		"maxVersion": version(&maxKey, &t.MaxVersion),
		"alpn": func(_, v *yaml.Node) {
			for _, e := range d.strEntries(v, what+" alpn", false) {
				t.ALPN = append(t.ALPN, e.val)
			}
		},
		"ciphers": func(_, v *yaml.Node) {
			ciphersNode = v
			for _, e := range d.strEntries(v, what+" ciphers", false) {
				if _, tls13, known := CipherSuite(e.val); !known || tls13 {
					d.errorf(e.node, "%s cipher %q is not supported; use IANA names of TLS 1.2 suites: %s", what, e.val, strings.Join(TLS12CipherSuiteNames(), ", "))
					ok = false
					continue
				}
				t.Ciphers = append(t.Ciphers, e.val)
			}
		},
	}
	for k, f := range extra {
		fields[k] = f
	}
	if !d.mapping(n, what, fields) {
		return nil, false
	}
	// Checks of fields together, each reported: a caller checks its own
	// fields against t too, usable or not.
	_, minKnown := tlsVersions[t.MinVersion]
	_, maxKnown := tlsVersions[t.MaxVersion]
	if minKnown && maxKnown && tlsVersions[t.MinVersion] > tlsVersions[t.MaxVersion] {
		d.errorf(maxKey, "%s maxVersion %s is below minVersion %s", what, t.MaxVersion, t.MinVersion)
		ok = false
	}
	if len(t.Ciphers) > 0 && t.MinVersion == "1.3" {
		d.errorf(ciphersNode, "%s ciphers apply to TLS 1.2 only, and minVersion is 1.3; remove ciphers", what)
		ok = false
	}
	if t.SkipValidation && caNode != nil {
		d.errorf(caNode, "%s has trustedCA and skipValidation: true, so trustedCA would be ignored; keep one", what)
		ok = false
	}
	return t, ok
}

func (d *decoder) tlsCertificate(n *yaml.Node, t *RedisTLS, what string) bool {
	ok := true
	var crtNode, keyNode *yaml.Node
	if !d.mapping(n, what+" certificate", map[string]field{
		"crt": func(_, v *yaml.Node) {
			crtNode = v
			var g bool
			t.Certificate, g = d.requiredStr(v, what+" certificate crt")
			ok = ok && g
		},
		"key": func(_, v *yaml.Node) {
			keyNode = v
			var g bool
			t.Key, g = d.requiredStr(v, what+" certificate key")
			ok = ok && g
		},
		"keyPassphrase": func(_, v *yaml.Node) {
			var g bool
			t.KeyPassphrase, g = d.str(v, what+" certificate keyPassphrase")
			ok = ok && g
		},
	}) {
		return false
	}
	if crtNode == nil || keyNode == nil {
		d.errorf(n, "%s certificate needs both crt and key (PEM text, e.g. crt: $env.TLS_CRT, key: $env.TLS_KEY)", what)
		return false
	}
	if !ok || SkipInlinePEM {
		return ok
	}
	if _, err := keyPair(t.Certificate, t.Key, t.KeyPassphrase); err != nil {
		// Never the key's text: only what is wrong with it.
		d.errorf(n, "%s certificate: %v", what, err)
		return false
	}
	return true
}

// SharedStorageView is spec.sharedStorage in the admin view: passwords and
// keys redacted, certificates by subject.
type SharedStorageView struct {
	Redis RedisView `json:"redis"`
	// State is the live state of the connection (up, breaker), when the
	// rate-limit store reports it (see SharedStorageState).
	State any `json:"state,omitempty"`
}

// RedisView is Redis in the admin view.
type RedisView struct {
	Mode      string        `json:"mode"`
	Address   string        `json:"address,omitempty"`
	Username  string        `json:"username,omitempty"`
	Password  string        `json:"password,omitempty"`
	DB        int           `json:"db"`
	Sentinel  *SentinelView `json:"sentinel,omitempty"`
	Addresses []string      `json:"clusterAddresses,omitempty"`
	TLS       *RedisTLSView `json:"tls,omitempty"`
}

// SentinelView is RedisSentinel in the admin view.
type SentinelView struct {
	Addresses  []string `json:"addresses"`
	MasterName string   `json:"masterName"`
	Password   string   `json:"password,omitempty"`
}

// RedisTLSView is RedisTLS in the admin view.
type RedisTLSView struct {
	TrustedCA      []string `json:"trustedCA,omitempty"`
	Certificate    string   `json:"certificate,omitempty"`
	Key            string   `json:"key,omitempty"`
	SkipValidation bool     `json:"skipValidation"`
	MinVersion     string   `json:"minVersion,omitempty"`
	MaxVersion     string   `json:"maxVersion,omitempty"`
	ALPN           []string `json:"alpn,omitempty"`
	Ciphers        []string `json:"ciphers,omitempty"`
}

// SharedStorageState, when set, returns the live state of the connection
// to s for the admin view. The rate-limit store sets it at init; the view
// calls it on every /config request.
var SharedStorageState func(s *SharedStorage) any

func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return RedactedValue
}

// view returns the admin view of s, or nil.
func (s *SharedStorage) view() *SharedStorageView {
	if s == nil || s.Redis == nil {
		return nil
	}
	r := s.Redis
	v := &SharedStorageView{Redis: RedisView{Mode: r.Mode(), Address: r.Address, Username: r.Username,
		Password: redacted(r.Password), DB: r.DB}}
	if r.Sentinel != nil {
		v.Redis.Sentinel = &SentinelView{Addresses: r.Sentinel.Addresses, MasterName: r.Sentinel.MasterName,
			Password: redacted(r.Sentinel.Password)}
	}
	if r.Cluster != nil {
		v.Redis.Addresses = r.Cluster.Addresses
	}
	if t := r.TLS; t != nil {
		tv := &RedisTLSView{SkipValidation: t.SkipValidation, MinVersion: t.MinVersion, MaxVersion: t.MaxVersion,
			ALPN: t.ALPN, Ciphers: t.Ciphers, Key: redacted(t.Key)}
		if t.TrustedCA != "" {
			_, tv.TrustedCA, _ = caPool(t.TrustedCA)
		}
		if cert, err := keyPair(t.Certificate, t.Key, t.KeyPassphrase); err == nil && len(cert.Certificate) > 0 {
			if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
				tv.Certificate = leaf.Subject.String()
			}
		}
		v.Redis.TLS = tv
	}
	if SharedStorageState != nil {
		v.State = SharedStorageState(s)
	}
	return v
}

package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testPEM returns a self-signed certificate named cn and its key, as PEM.
func testPEM(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// routed is a route, so that a document with shared storage loads.
const routed = "  routes: [{id: r, path: /x, upstream: {url: http://b}}]\n"

func TestSharedStorageLoads(t *testing.T) {
	ca, _ := testPEM(t, "redis-ca")
	crt, key := testPEM(t, "gateway-client")
	t.Setenv("FG_REDIS_PASSWORD", "pw-from-env")
	t.Setenv("FG_REDIS_CA", ca)
	t.Setenv("FG_REDIS_CRT", crt)
	t.Setenv("FG_REDIS_KEY", key)
	t.Setenv("FG_REDIS_DB", "7")
	cfg := mustLoad(t, "a.yaml", head+routed+`  sharedStorage:
    redis:
      address: redis.cache.svc:6379
      user: gateway
      password: $env.FG_REDIS_PASSWORD
      DB: $env.FG_REDIS_DB
      tls:
        trustedCA: $env.FG_REDIS_CA
        certificate: {crt: $env.FG_REDIS_CRT, key: $env.FG_REDIS_KEY}
        minversion: "1.2"
        maxVersion: "1.3"
        alpn: [redis]
        ciphers: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
`)
	s := cfg.SharedStorage
	if s == nil || s.Redis == nil {
		t.Fatal("no shared storage")
	}
	r := s.Redis
	if r.Address != "redis.cache.svc:6379" || r.Username != "gateway" || r.Password != "pw-from-env" || r.DB != 7 ||
		r.Mode() != "standalone" || s.Pos.Line != 7 || s.Pos.Col != 3 {
		t.Errorf("redis = %+v at %s", r, s.Pos)
	}
	tc, err := r.TLS.Config()
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 || tc.MaxVersion != tls.VersionTLS13 ||
		len(tc.CipherSuites) != 1 || tc.NextProtos[0] != "redis" || tc.InsecureSkipVerify {
		t.Errorf("tls config = %+v", tc)
	}

	// The admin view: passwords and keys never, certificates by subject.
	b, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"pw-from-env", "PRIVATE KEY", strings.Split(key, "\n")[1]} {
		if strings.Contains(out, secret) {
			t.Errorf("%q leaked into /config: %s", secret, out)
		}
	}
	for _, want := range []string{`"mode":"standalone"`, `"address":"redis.cache.svc:6379"`, `"password":"[redacted]"`,
		`"db":7`, `"trustedCA":["CN=redis-ca"]`, `"certificate":"CN=gateway-client"`, `"key":"[redacted]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("/config lacks %s:\n%s", want, out)
		}
	}

	// Sentinel and Cluster, with the other spellings.
	cfg = mustLoad(t, "a.yaml", head+routed+`  sharedStorage:
    redis:
      username: u
      db: 2
      sentinel: {addresses: ["s0:26379", "s1:26379"], masterName: mymaster, password: sentinel-pw}
      tls: {}
`)
	r = cfg.SharedStorage.Redis
	if r.Mode() != "sentinel" || r.Sentinel.MasterName != "mymaster" || len(r.Addresses()) != 2 || r.DB != 2 || r.TLS == nil {
		t.Errorf("sentinel = %+v", r)
	}
	if b, _ := json.Marshal(cfg.Redacted()); strings.Contains(string(b), "sentinel-pw") {
		t.Errorf("sentinel password in /config: %s", b)
	}
	cfg = mustLoad(t, "a.yaml", head+routed+"  sharedStorage:\n    redis:\n      cluster: {addresses: [\"n0:7000\", \"n1:7001\"]}\n")
	if r := cfg.SharedStorage.Redis; r.Mode() != "cluster" || strings.Join(r.Addresses(), ",") != "n0:7000,n1:7001" {
		t.Errorf("cluster = %+v", r)
	}
	if cfg := mustLoad(t, "a.yaml", head+routed); cfg.SharedStorage != nil || cfg.Redacted().SharedStorage != nil {
		t.Errorf("shared storage without sharedStorage: %+v", cfg.SharedStorage)
	}
}

func TestSharedStorageErrors(t *testing.T) {
	ca, _ := testPEM(t, "ca")
	crt, key := testPEM(t, "client")
	_, otherKey := testPEM(t, "other")
	t.Setenv("FG_CA", ca)
	t.Setenv("FG_CRT", crt)
	t.Setenv("FG_KEY", key)
	t.Setenv("FG_OTHER_KEY", otherKey)
	t.Setenv("FG_SECRET", "hunter2-secret")
	// The redis mapping's fields start on line 9, column 7.
	f := func(redis, pos string, words ...string) {
		t.Helper()
		got := loadErrors(t, "a.yaml", head+routed+"  sharedStorage:\n    redis:\n"+redis)
		expectOne(t, got, "a.yaml:"+pos, words...)
		if strings.Contains(strings.Join(got, "\n"), "hunter2") {
			t.Errorf("an error shows the password: %s", got)
		}
	}
	f("      address: redis:6379\n      passwrd: $env.FG_SECRET\n", "10:7", `unknown field "passwrd" in redis`, "password")
	f("      password: $env.FG_SECRET\n", "9:7", "redis has no address", "sentinel", "cluster")
	f("      address: redis\n      password: $env.FG_SECRET\n", "9:16", `"redis" must be host:port`)
	f("      address: redis://r:6379\n", "9:16", "must be host:port", "no scheme")
	f("      address: r:99999\n", "9:16", "must be host:port")
	f("      address: r:1\n      cluster: {addresses: [\"n:1\"]}\n", "9:7", "more than one of address, sentinel and cluster")
	f("      cluster: {addresses: [\"n:1\"]}\n      db: 3\n", "10:11", "only database 0")
	f("      cluster: {addresses: []}\n", "9:28", "must list at least one host:port")
	f("      cluster: {}\n", "9:16", "redis cluster has no addresses")
	f("      address: r:1\n      db: 1\n      DB: 1\n", "11:7", "db and DB are two spellings")
	f("      address: r:1\n      db: -1\n", "10:11", "redis db must be a whole number from 0 to 2147483647, not -1")
	f("      address: r:1\n      db: one\n", "10:11", `redis db must be a whole number from 0 to 2147483647, not "one"`)
	f("      address: r:1\n      username: u\n      user: u\n", "11:7", "username and user are two spellings")
	f("      sentinel: {addresses: [\"s:1\"]}\n", "9:17", "no masterName")
	f("      sentinel: {masterName: m}\n", "9:17", "no addresses")
	f("      sentinel: {addresses: [\"s\"], masterName: m}\n", "9:30", "sentinel addresses entry \"s\" must be host:port")
	f("      address: r:1\n      tls: {minversion: \"1.1\"}\n", "10:25", `minversion "1.1" is not supported; use "1.2" or "1.3"`)
	f("      address: r:1\n      tls: {minVersion: \"1.3\", maxVersion: \"1.2\"}\n", "10:32", "maxVersion 1.2 is below minVersion 1.3")
	f("      address: r:1\n      tls: {minversion: \"1.2\", minVersion: \"1.2\"}\n", "10:32", "minversion and minVersion are two spellings")
	f("      address: r:1\n      tls: {ciphers: [RC4]}\n", "10:23", `cipher "RC4" is not supported`, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
	f("      address: r:1\n      tls: {minVersion: \"1.3\", ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]}\n", "10:41", "ciphers apply to TLS 1.2 only")
	f("      address: r:1\n      tls: {trustedCA: not-pem}\n", "10:24", "trustedCA holds no PEM certificate")
	f("      address: r:1\n      tls: {trustedCA: $env.FG_KEY}\n", "10:24", `trustedCA holds a PEM "PRIVATE KEY" block`)
	f("      address: r:1\n      tls: {trustedCA: $env.FG_CA, skipValidation: true}\n", "10:24", "trustedCA and skipValidation")
	f("      address: r:1\n      tls: {skipValidation: maybe}\n", "10:29", "must be true or false")
	f("      address: r:1\n      tls: {certificate: {crt: $env.FG_CRT}}\n", "10:26", "needs both crt and key")
	f("      address: r:1\n      tls: {certificate: {crt: $env.FG_CRT, key: $env.FG_OTHER_KEY}}\n", "10:26",
		"not a PEM certificate chain and its private key")
	f("      address: r:1\n      tls: {certificate: {crt: $env.FG_CRT, key: $env.FG_KEY, keyPassphrase: x}}\n", "10:26",
		"key is not encrypted; remove keyPassphrase")
	f("      address: r:1\n      tls: {certificate: {crt: $env.FG_CRT, key: garbage}}\n", "10:26", "key holds no PEM private key")

	// Each problem of the tls settings, not the first alone.
	got := loadErrors(t, "a.yaml", head+routed+"  sharedStorage:\n    redis:\n      address: r:1\n"+
		"      tls: {minVersion: \"1.3\", maxVersion: \"1.2\", ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], trustedCA: $env.FG_CA, skipValidation: true}\n")
	if want := []string{"a.yaml:10:32: redis tls maxVersion 1.2 is below minVersion 1.3", "a.yaml:10:60: redis tls ciphers apply to TLS 1.2 only",
		"a.yaml:10:112: redis tls has trustedCA and skipValidation"}; len(got) != len(want) ||
		!strings.HasPrefix(got[0], want[0]) || !strings.HasPrefix(got[1], want[1]) || !strings.HasPrefix(got[2], want[2]) {
		t.Errorf("tls errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	got = loadErrors(t, "a.yaml", head+routed+"  sharedStorage:\n    redis: {address: $env.FG_UNSET_ADDR}\n")
	if len(got) == 0 || !strings.HasPrefix(got[0], "a.yaml:8:22: environment variable FG_UNSET_ADDR is not set") {
		t.Errorf("unset variable: %q", got)
	}
	got = loadErrors(t, "a.yaml", head+routed+"  sharedStorage: {}\n")
	expectOne(t, got, "a.yaml:7:18", "sharedStorage is empty")
}

// TestSharedStorageOncePerGateway: documents may repeat the same shared
// storage, but two different ones are an error naming both places.
func TestSharedStorageOncePerGateway(t *testing.T) {
	same := head + "  sharedStorage:\n    redis: {address: \"r:6379\", password: p}\n"
	cfg := mustLoad(t, "a.yaml", same+routed, "b.yaml", same)
	if cfg.SharedStorage.Redis.Address != "r:6379" || !strings.HasSuffix(cfg.SharedStorage.Pos.File, "a.yaml") {
		t.Errorf("shared storage = %+v", cfg.SharedStorage)
	}
	got := loadErrors(t, "a.yaml", same+routed, "b.yaml", strings.Replace(same, "password: p", "password: q", 1))
	expectOne(t, got, "b.yaml:6:3", "sharedStorage differs from the one set at", "a.yaml:6:3")
	if strings.Contains(got[0], "password: q") {
		t.Errorf("the error shows a password: %s", got[0])
	}
}

// TestSharedStorageEncryptedKey: keyPassphrase decrypts a legacy encrypted
// PEM key, as Flex Gateway's field does.
func TestSharedStorageEncryptedKey(t *testing.T) {
	crt, key := testPEM(t, "client")
	b, _ := pem.Decode([]byte(key))
	//lint:ignore SA1019 the legacy format keyPassphrase reads
	enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", b.Bytes, []byte("open sesame"), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FG_CRT", crt)
	t.Setenv("FG_ENC_KEY", string(pem.EncodeToMemory(enc)))
	doc := func(passphrase string) string {
		return head + routed + "  sharedStorage:\n    redis:\n      address: r:1\n      tls:\n        certificate: {crt: $env.FG_CRT, key: $env.FG_ENC_KEY" + passphrase + "}\n"
	}
	cfg := mustLoad(t, "a.yaml", doc(", keyPassphrase: open sesame"))
	if tc, err := cfg.SharedStorage.Redis.TLS.Config(); err != nil || len(tc.Certificates) != 1 {
		t.Fatalf("decrypted key: %v, %+v", err, tc)
	}
	expectOne(t, loadErrors(t, "a.yaml", doc("")), "a.yaml:11:22", "key is encrypted; give its keyPassphrase")
	expectOne(t, loadErrors(t, "a.yaml", doc(", keyPassphrase: wrong")), "a.yaml:11:22", "cannot be decrypted with keyPassphrase")
}

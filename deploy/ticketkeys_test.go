package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// ticketKeysConfig is a `config` value with an HTTPS listener that names
// no session ticket keys, one that names its own, and a plain one.
func ticketKeysConfig(certFile, keyFile string) map[string]any {
	cert := []any{map[string]any{"certFile": certFile, "keyFile": keyFile}}
	return map[string]any{
		"apiVersion": "gateway.mulesoft.com/v1alpha1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": "edge"},
		"spec": map[string]any{
			"listeners": []any{
				map[string]any{"name": "https-main", "port": 8443, "tls": map[string]any{"certificates": cert}},
				map[string]any{"name": "own", "port": 8444, "tls": map[string]any{"certificates": cert, "sessionTicketKeys": []any{"own.key"}}},
				map[string]any{"name": "plain", "port": 8080},
			},
			"routes": []any{map[string]any{"id": "r", "path": "/x", "upstream": map[string]any{"url": "http://b"}}},
		},
	}
}

// TestChartSessionTicketKeys: gateway.sessionTicketKeys mounts the
// Secret's keys where the chart-made config's HTTPS listeners read them,
// the first key first, and the gateway accepts the config with the files
// at that place; a listener that names its own keys keeps them.
func TestChartSessionTicketKeys(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeTestCert(t, dir)
	mountPath := filepath.Join(dir, "ticket-keys")
	vals := valuesFrom(t, nil,
		"gateway.sessionTicketKeys.secretName=flex-gateway-ticket-keys",
		"gateway.sessionTicketKeys.keys={current.key,previous.key}",
		"gateway.sessionTicketKeys.mountPath="+mountPath,
	)
	vals["config"] = ticketKeysConfig(certFile, keyFile)
	r := render(t, vals)
	d := r.deployments[releaseName]
	c := gatewayContainer(t, d)
	m, ok := mountAt(c, mountPath)
	if !ok || !m.ReadOnly {
		t.Fatalf("session ticket keys not mounted read-only at %s: %+v", mountPath, c.VolumeMounts)
	}
	if m.SubPath != "" {
		t.Errorf("mounted with subPath %q: the kubelet would not update the files when the Secret changes", m.SubPath)
	}
	v, _ := volume(d, m.Name)
	if v.Secret == nil || v.Secret.SecretName != "flex-gateway-ticket-keys" {
		t.Fatalf("volume %q = %+v, want Secret flex-gateway-ticket-keys", m.Name, v)
	}
	var items []string
	for _, it := range v.Secret.Items {
		items = append(items, it.Key+"→"+it.Path)
	}
	if got := strings.Join(items, ","); got != "current.key→current.key,previous.key→previous.key" {
		t.Errorf("Secret items %s, want current.key and previous.key as files of their names", got)
	}
	if mode := v.Secret.DefaultMode; mode == nil || *mode != 0o440 {
		t.Errorf("key files' mode %v, want 0440 (the pod's group reads them, nobody else)", mode)
	}

	cfgText := r.configMaps[releaseName+"-config"].Data["gateway-config.yaml"]
	var cfg struct {
		Spec struct {
			Listeners []struct {
				Name string
				TLS  *struct {
					SessionTicketKeys []string `json:"sessionTicketKeys"`
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"https-main": mountPath + "/current.key," + mountPath + "/previous.key",
		"own":        "own.key",
		"plain":      "no tls",
	}
	for _, l := range cfg.Spec.Listeners {
		got := "no tls"
		if l.TLS != nil {
			got = strings.Join(l.TLS.SessionTicketKeys, ",")
		}
		if got != want[l.Name] {
			t.Errorf("listener %s: sessionTicketKeys %q, want %q", l.Name, got, want[l.Name])
		}
	}

	if !strings.Contains(r.notes, "Session ticket keys: Secret flex-gateway-ticket-keys") || !strings.Contains(r.notes, "The chart wrote them") {
		t.Errorf("NOTES do not say where the keys went:\n%s", r.notes)
	}
	// With the seed's own ConfigMap the notes give the lines to add.
	ext := render(t, valuesFrom(t, []string{exampleFile(t, "local-values.yaml")},
		"gateway.sessionTicketKeys.secretName=flex-gateway-ticket-keys", "gateway.sessionTicketKeys.keys={current.key,previous.key}"))
	if want := "sessionTicketKeys: [/etc/flexgate/session-ticket-keys/current.key, /etc/flexgate/session-ticket-keys/previous.key]"; !strings.Contains(ext.notes, want) {
		t.Errorf("NOTES with an external ConfigMap lack %q:\n%s", want, ext.notes)
	}
	if _, ok := mountAt(gatewayContainer(t, ext.deployments[releaseName]), "/tls"); !ok {
		t.Error("with session ticket keys, the seed's TLS mount is gone")
	}

	// The pod's files: the config, the Secret's keys at mountPath, the
	// listener's own key beside the config. The gateway reads them all.
	bin := gatewayBinary(t)
	confDir := filepath.Join(dir, "conf.d")
	for path, size := range map[string]int{
		filepath.Join(mountPath, "current.key"): 80, filepath.Join(mountPath, "previous.key"): 80,
		filepath.Join(confDir, "own.key"): 48,
	} {
		writeRandom(t, path, size)
	}
	if err := os.WriteFile(filepath.Join(confDir, "gateway-config.yaml"), []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "validate", confDir).CombinedOutput(); err != nil {
		t.Fatalf("flexgate validate of the chart's config with the keys mounted: %v\n%s", err, out)
	}
	// An empty key in the Secret: the gateway names the file.
	writeRandom(t, filepath.Join(mountPath, "previous.key"), 0)
	out, err := exec.Command(bin, "validate", confDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "session ticket key file "+mountPath+"/previous.key is empty") {
		t.Errorf("flexgate validate with an empty key file: %v\n%s", err, out)
	}

	// Without the value: nothing mounted, the config as written.
	vals = valuesFrom(t, nil)
	vals["config"] = ticketKeysConfig(certFile, keyFile)
	r = render(t, vals)
	if _, ok := volume(r.deployments[releaseName], m.Name); ok {
		t.Errorf("volume %s rendered without gateway.sessionTicketKeys", m.Name)
	}
	if cm := r.configMaps[releaseName+"-config"].Data["gateway-config.yaml"]; strings.Count(cm, "sessionTicketKeys") != 1 {
		t.Errorf("without gateway.sessionTicketKeys the config changed:\n%s", cm)
	}
}

func TestChartSessionTicketKeysRefusals(t *testing.T) {
	f := func(want string, sets ...string) {
		t.Helper()
		_, _, err := renderChart(t, valuesFrom(t, nil, sets...))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %v: want an error containing %q, got %v", sets, want, err)
		}
	}
	f("secretName is empty: name the Secret", "gateway.sessionTicketKeys.keys={a.key}")
	f("keys is empty: list the Secret's keys to use, the one that encrypts new tickets first", "gateway.sessionTicketKeys.secretName=s")
	f(`keys names "a.key" twice`, "gateway.sessionTicketKeys.secretName=s", "gateway.sessionTicketKeys.keys={a.key,b.key,a.key}")
	f("sessionTicketKeys/keys/0", "gateway.sessionTicketKeys.secretName=s", "gateway.sessionTicketKeys.keys={../a.key}")
	f("sessionTicketKeys/mountPath", "gateway.sessionTicketKeys.mountPath=keys")
	// A config the chart writes whose listeners have no tls (a Flex
	// ApiInstance's): the keys would be mounted and never used.
	vals := valuesFrom(t, nil, "gateway.sessionTicketKeys.secretName=s", "gateway.sessionTicketKeys.keys={a.key}")
	vals["config"] = map[string]any{"apiVersion": "gateway.mulesoft.com/v1alpha1", "kind": "ApiInstance",
		"metadata": map[string]any{"name": "orders"}, "spec": map[string]any{"address": "http://0.0.0.0:8081"}}
	if _, _, err := renderChart(t, vals); err == nil || !strings.Contains(err.Error(), "has no listener with tls") {
		t.Errorf("keys for a config without HTTPS listeners: %v", err)
	}
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeTestCert writes a self-signed certificate and its key to dir.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"edge"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

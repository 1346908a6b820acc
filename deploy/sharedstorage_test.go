package deploy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const sharedDir = "/etc/flexgate/shared-storage"

// clusterLimitConfig is a gateway config whose route has a clusterizable
// limit of 2 per minute per client.
func clusterLimitConfig(upstream string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: cluster-limit}
spec:
  routes:
    - id: api
      path: ["/api/*"]
      upstream: {url: %q}
      policies:
        - rate-limiting: {limit: 2, period: 60, identifier: $request.header.X-Client, clusterizable: true}
`, upstream)
}

func TestChartSharedStorage(t *testing.T) {
	r := render(t, valuesFrom(t, nil,
		"config=apiVersion: gateway.mulesoft.com/v1alpha1",
		"sharedStorage.redis.address=redis-master.cache:6379",
		"sharedStorage.redis.username=gateway",
		"sharedStorage.redis.db=3",
		"sharedStorage.redis.passwordSecret.name=flex-gateway-redis",
		"sharedStorage.redis.tls.enabled=true",
		"sharedStorage.redis.tls.caSecret.name=redis-ca",
		"sharedStorage.redis.tls.clientCertSecret=redis-client",
		"deployment.autoscaling.enabled=true",
	))
	cm, ok := r.configMaps[releaseName+"-shared-storage"]
	if !ok {
		t.Fatalf("no ConfigMap %s-shared-storage; got %v", releaseName, keys(r.configMaps))
	}
	var doc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string
		Metadata   struct{ Name string }
		Spec       struct {
			SharedStorage struct {
				Redis map[string]any
			} `json:"sharedStorage"`
		}
	}
	if err := yaml.UnmarshalStrict([]byte(cm.Data["shared-storage.yaml"]), &doc); err != nil {
		t.Fatal(err)
	}
	redis := doc.Spec.SharedStorage.Redis
	want := `map[address:redis-master.cache:6379 db:3 password:$env.FLEXGATE_REDIS_PASSWORD ` +
		`tls:map[certificate:map[crt:$env.FLEXGATE_REDIS_TLS_CRT key:$env.FLEXGATE_REDIS_TLS_KEY] minVersion:1.2 trustedCA:$env.FLEXGATE_REDIS_CA] username:gateway]`
	if doc.Kind != "Gateway" || fmt.Sprint(redis) != want {
		t.Errorf("shared storage document:\n%s\nwant redis %s", cm.Data["shared-storage.yaml"], want)
	}

	d := r.deployments[releaseName]
	c := gatewayContainer(t, d)
	var configs []string
	for i, a := range c.Args {
		if a == "--config" {
			configs = append(configs, c.Args[i+1])
		}
	}
	if strings.Join(configs, ",") != configDir+","+sharedDir {
		t.Errorf("--config %q, want the config then %s", configs, sharedDir)
	}
	if m, ok := mountAt(c, sharedDir); !ok || !m.ReadOnly {
		t.Errorf("shared storage not mounted read-only at %s: %+v", sharedDir, c.VolumeMounts)
	} else if v, _ := volume(d, m.Name); v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("volume %+v, want ConfigMap %s", v, cm.Name)
	}
	for name, ref := range map[string][2]string{
		"FLEXGATE_REDIS_PASSWORD": {"flex-gateway-redis", "password"},
		"FLEXGATE_REDIS_CA":       {"redis-ca", "ca.crt"},
		"FLEXGATE_REDIS_TLS_CRT":  {"redis-client", "tls.crt"},
		"FLEXGATE_REDIS_TLS_KEY":  {"redis-client", "tls.key"},
	} {
		e, ok := envVar(c, name)
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != ref[0] || e.ValueFrom.SecretKeyRef.Key != ref[1] {
			t.Errorf("env %s = %+v, want Secret %s key %s", name, e, ref[0], ref[1])
		}
	}
	if e, _ := envVar(c, "FLEXGATE_MAX_REPLICAS"); e.Value != "13" {
		t.Errorf("FLEXGATE_MAX_REPLICAS = %q, want 13 (maxReplicas 10 + 25 %% surge)", e.Value)
	}
	if _, ok := d.Spec.Template.Annotations["checksum/shared-storage"]; !ok {
		t.Errorf("no checksum/shared-storage annotation: %v", d.Spec.Template.Annotations)
	}

	// Without shared storage: no ConfigMap, no second --config, no Redis
	// variables.
	r = render(t, valuesFrom(t, nil, "config=apiVersion: gateway.mulesoft.com/v1alpha1"))
	c = gatewayContainer(t, r.deployments[releaseName])
	if _, ok := r.configMaps[releaseName+"-shared-storage"]; ok || strings.Contains(strings.Join(c.Args, " "), sharedDir) {
		t.Errorf("shared storage rendered without sharedStorage values: %v %q", keys(r.configMaps), c.Args)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "FLEXGATE_REDIS") {
			t.Errorf("env %s without shared storage", e.Name)
		}
	}
}

// TestChartMaxReplicas: FLEXGATE_MAX_REPLICAS is the most pods that can
// serve at once: the HPA's maxReplicas or replicaCount, plus the surge.
func TestChartMaxReplicas(t *testing.T) {
	f := func(want string, sets ...string) {
		t.Helper()
		r := render(t, valuesFrom(t, nil, sets...))
		var values []string
		for _, e := range gatewayContainer(t, r.deployments[releaseName]).Env {
			if e.Name == "FLEXGATE_MAX_REPLICAS" {
				values = append(values, e.Value)
			}
		}
		if strings.Join(values, ",") != want {
			t.Errorf("values %v: FLEXGATE_MAX_REPLICAS %q, want %q", sets, values, want)
		}
	}
	f("3") // replicaCount 2, 25 % surge rounds up to 1
	f("13", "autoscaling.enabled=true")
	f("12", "deployment.autoscaling.enabled=true", "deployment.autoscaling.maxReplicas=8", "deployment.strategy.rollingUpdate.maxSurge=50%")
	f("12", "autoscaling.enabled=true", "deployment.strategy.rollingUpdate.maxSurge=2")
	f("10", "autoscaling.enabled=true", "deployment.strategy.rollingUpdate.maxSurge=0")
	f("10", "autoscaling.enabled=true", "deployment.strategy.type=Recreate", "deployment.strategy.rollingUpdate=null")
	f("40", "deployment.extraEnvs[0].name=FLEXGATE_MAX_REPLICAS", "deployment.extraEnvs[0].value=40")
}

func TestChartSharedStorageRefusals(t *testing.T) {
	f := func(want string, sets ...string) {
		t.Helper()
		_, _, err := renderChart(t, valuesFrom(t, nil, sets...))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %v: error %v, want %q", sets, err, want)
		}
	}
	f("set one of address (one server), sentinel.addresses (a Sentinel set) and cluster.addresses",
		"config=x", "sharedStorage.redis.address=r:6379", "sharedStorage.redis.cluster.addresses[0]=n:7000")
	f("sharedStorage.redis is set but the gateway has no config", "sharedStorage.redis.address=r:6379")
	f("/sharedStorage/redis/address", "config=x", "sharedStorage.redis.address=redis://r:6379")
}

// TestChartSharedStorageHoldsOneLimitAcrossPods runs two gateways with the
// arguments, config files and environment the chart gives two pods, the
// password read from a Secret, against a real Redis that wants it: together
// they admit the limit once.
func TestChartSharedStorageHoldsOneLimitAcrossPods(t *testing.T) {
	bin := gatewayBinary(t)
	redisServer := tool(t, "redis-server", "apt-get install redis-server")
	const password = "chart-redis-password"
	addr := startRedis(t, redisServer, "--requirepass", password)
	upstream := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))

	vals := valuesFrom(t, nil,
		"sharedStorage.redis.address="+addr,
		"sharedStorage.redis.passwordSecret.name=flex-gateway-redis",
		"autoscaling.enabled=true",
	)
	vals["config"] = clusterLimitConfig(upstream)
	r := render(t, vals)
	c := gatewayContainer(t, r.deployments[releaseName])
	// The pod's files: each ConfigMap where the chart mounts it.
	dirs := map[string]string{configDir: t.TempDir(), sharedDir: t.TempDir()}
	for mount, cmName := range map[string]string{configDir: releaseName + "-config", sharedDir: releaseName + "-shared-storage"} {
		for k, v := range r.configMaps[cmName].Data {
			if err := os.WriteFile(filepath.Join(dirs[mount], k), []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The pod's environment: the Secret's value where the chart reads one.
	secrets := map[string]string{"flex-gateway-redis/password": password}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name+"/"+ref.Key]
			if !ok {
				t.Fatalf("env %s reads Secret %s key %s, which the test does not have", e.Name, ref.Name, ref.Key)
			}
			t.Setenv(e.Name, v)
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		}
	}
	args := podArgs(c, dirs)

	var gws []*gateway
	for range 2 {
		gws = append(gws, startGateway(t, bin, args...))
	}
	var statuses []string
	for i := range 4 {
		statuses = append(statuses, strconv.Itoa(getStatus(t, "http://"+gws[i%2].proxy+"/api/x", "tenant-1")))
	}
	if got := strings.Join(statuses, ","); got != "200,200,429,429" {
		t.Errorf("two pods, a clusterizable limit of 2: statuses %s, want 200,200,429,429\n%s", got, gws[0].logs.String())
	}
	for _, g := range gws {
		if strings.Contains(g.logs.String(), "per replica") {
			t.Errorf("a pod warns that the limit is per replica:\n%s", g.logs.String())
		}
	}
	resp, err := http.Get("http://" + gws[0].admin + "/config")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), password) || !strings.Contains(string(body), `"up": true`) {
		t.Errorf("/config: want the store up and no password:\n%s", body)
	}
}

// podArgs are the container's arguments with the pod's mount paths
// replaced by dirs and the ports by free loopback ones.
func podArgs(c corev1.Container, dirs map[string]string) []string {
	args := append([]string(nil), c.Args...)
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			args[i+1] = dirs[args[i+1]]
		case "--admin-addr", "--listen":
			args[i+1] = "127.0.0.1:0"
		case "--drain-delay":
			args[i+1] = "0s"
		}
	}
	for _, a := range args {
		if a == "--listen" {
			return args
		}
	}
	return append(args, "--listen", "127.0.0.1:0")
}

func getStatus(t *testing.T, url, client string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Client", client)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// startRedis runs redis-server on a free loopback port without
// persistence until the test ends, and returns its address.
func startRedis(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--logfile", ""}, extra...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			sent := false
			for sc.Scan() {
				if !sent && strings.Contains(sc.Text(), "Ready to accept connections") {
					ready <- true
					sent = true
				}
			}
			if !sent {
				ready <- false
			}
		}()
		var ok bool
		select {
		case ok = <-ready:
		case <-time.After(20 * time.Second):
		}
		if ok {
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			return addr
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Fatal("redis-server did not start in 5 tries")
	return ""
}

package deploy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChartConnectedArgsAreRefusedByGateway runs the gateway with exactly
// the arguments the chart renders for the seed's connected-values.yaml: it
// must stop with the message the chart's NOTES promise, not serve.
func TestChartConnectedArgsAreRefusedByGateway(t *testing.T) {
	bin := gatewayBinary(t)
	r := render(t, valuesFrom(t, []string{exampleFile(t, "connected-values.yaml")}))
	args := gatewayContainer(t, r.deployments[releaseName]).Args
	for i, a := range args {
		if a == "--connected-credentials" {
			args[i+1] = t.TempDir()
		}
		if a == "--admin-addr" {
			args[i+1] = "127.0.0.1:0"
		}
	}
	cmd := exec.Command(bin, append(args, "--listen", "127.0.0.1:0")...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gateway started with %q kept running: connected mode must be refused", args)
	}
	if err == nil {
		t.Errorf("gateway exited 0 with %q; want a failure", args)
	}
	if !strings.Contains(string(out), "connected mode is not supported yet") {
		t.Errorf("gateway output with %q lacks the refusal:\n%s", args, out)
	}
}

// TestGatewayReloadsConfigMapVolumeLive lays out a directory the way the
// kubelet mounts a ConfigMap (files are symlinks through ..data, and an
// update swaps ..data atomically) and checks that the gateway serves the
// new config without a restart or signal: the chart relies on that for an
// external deployment.configMapName.
func TestGatewayReloadsConfigMapVolumeLive(t *testing.T) {
	bin := gatewayBinary(t)
	upstream := http.NewServeMux()
	upstream.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := newLocalServer(t, upstream)

	dir := t.TempDir()
	gen := 0
	publish := func(route string) {
		t.Helper()
		gen++
		ts := fmt.Sprintf("..2026_01_01_00_00_0%d.%d", gen, os.Getpid())
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf("apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata: {name: cm}\nspec:\n  routes:\n    - {id: r, path: [\"/%s/*\"], upstream: {url: %q}}\n", route, srv)
		if err := os.WriteFile(filepath.Join(dir, ts, "gateway-config.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "gateway-config.yaml")
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", "gateway-config.yaml"), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("v1")

	gw := startGateway(t, bin, "run", "--config", dir, "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--drain-delay", "0s", "--shutdown-timeout", "5s")
	get := func(path string) int {
		resp, err := http.Get("http://" + gw.proxy + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/v1/a"); got != 200 {
		t.Fatalf("GET /v1/a = %d before the update, want 200\n%s", got, gw.logs.String())
	}

	publish("v2")
	deadline := time.Now().Add(10 * time.Second)
	for get("/v2/a") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("10s after the ConfigMap volume swapped ..data, /v2/a still does not route: the gateway missed the update\n%s", gw.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := get("/v1/a"); got != 404 {
		t.Errorf("GET /v1/a = %d after the update, want 404 (old route gone)", got)
	}
	if err := gw.stop(15 * time.Second); err != nil {
		t.Error(err)
	}
}

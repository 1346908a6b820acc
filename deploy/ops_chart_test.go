package deploy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func envVar(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// TestChartConnectionCapFitsMemoryLimit: a pod at its connection cap stays
// within its memory limit. The chart passes --max-connections = (90 % of
// the limit − gateway.memoryReserveMiB) ÷ gateway.memoryPerConnectionKiB,
// refuses an explicit cap that does not fit, and sets GOMEMLIMIT to that
// 90 %. The 128 KiB per connection is what proxy's TestIdleConnectionMemory
// bounds a kept-alive connection to.
func TestChartConnectionCapFitsMemoryLimit(t *testing.T) {
	f := func(wantCap, wantGoMemLimit string, sets ...string) {
		t.Helper()
		r := render(t, valuesFrom(t, nil, sets...))
		c := gatewayContainer(t, r.deployments[releaseName])
		got, _ := flagValue(c.Args, "--max-connections")
		env, _ := envVar(c, "GOMEMLIMIT")
		if got != wantCap || env.Value != wantGoMemLimit {
			t.Errorf("values %v: --max-connections %q, GOMEMLIMIT %q; want %q and %q", sets, got, env.Value, wantCap, wantGoMemLimit)
		}
		if wantCap != "" && !strings.Contains(r.notes, "at most "+wantCap+" client connections") {
			t.Errorf("values %v: NOTES do not give the connection cap:\n%s", sets, r.notes)
		}
	}
	// 512Mi: (483183820 − 160 MiB) ÷ 128 KiB.
	f("2406", "483183820")
	f("6092", "966367641", "deployment.resources.limits.memory=1Gi")
	f("9779", "1449551462", "deployment.resources.limits.memory=1610612736")
	f("1000", "483183820", "gateway.maxConnections=1000")
	// A smaller maxHeaderSize leaves connections smaller.
	f("4812", "483183820", "gateway.memoryPerConnectionKiB=64")
	// Without a memory limit there is nothing to derive from.
	f("", "", "deployment.resources.limits.memory=null")
	f("500", "", "deployment.resources.limits.memory=null", "gateway.maxConnections=500")

	// GOMEMLIMIT set by the user is theirs; the chart adds no second one.
	r := render(t, valuesFrom(t, nil, "deployment.extraEnvs[0].name=GOMEMLIMIT", "deployment.extraEnvs[0].value=400MiB"))
	var values []string
	for _, e := range gatewayContainer(t, r.deployments[releaseName]).Env {
		if e.Name == "GOMEMLIMIT" {
			values = append(values, e.Value)
		}
	}
	if !slices.Equal(values, []string{"400MiB"}) {
		t.Errorf("GOMEMLIMIT set in extraEnvs: the container gets %q", values)
	}

	refused := func(want string, sets ...string) {
		t.Helper()
		_, _, err := renderChart(t, valuesFrom(t, nil, sets...))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %v: want an error containing %q, got %v", sets, want, err)
		}
	}
	refused("gateway.maxConnections is 5000, but a 512Mi memory limit holds 2406 connections: (90% of the limit − 160 MiB reserve) ÷ 128 KiB each. Lower it to 2406, or raise deployment.resources.limits.memory to 873Mi.",
		"gateway.maxConnections=5000")
	refused("deployment.resources.limits.memory 128Mi leaves no room for connections", "deployment.resources.limits.memory=128Mi")
	refused(`deployment.resources.limits.memory "0.5Gi": the chart derives the connection cap and GOMEMLIMIT from it`,
		"deployment.resources.limits.memory=0.5Gi")
	refused("maxConnections", "gateway.maxConnections=0")
}

// TestChartNetworkPolicy: off by default; on, it opens the proxy ports to
// proxyFrom (anyone when empty) and the admin port to adminFrom alone.
func TestChartNetworkPolicy(t *testing.T) {
	if r := render(t, valuesFrom(t, nil)); len(r.networkPolicies) != 0 {
		t.Fatalf("a NetworkPolicy by default: %v", keys(r.networkPolicies))
	}
	sets := []string{"networkPolicy.enabled=true",
		`networkPolicy.adminFrom[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=monitoring`,
		"networkPolicy.adminFrom[0].podSelector.matchLabels.app=prometheus"}
	if msgs := lintChart(t, valuesFrom(t, nil, sets...)); len(msgs) > 0 {
		t.Fatalf("helm lint --strict: %s", strings.Join(msgs, "\n"))
	}
	r := render(t, valuesFrom(t, nil, sets...))
	np := r.networkPolicies[releaseName]
	if np == nil {
		t.Fatalf("no NetworkPolicy/%s: %v", releaseName, keys(r.networkPolicies))
	}
	d := r.deployments[releaseName]
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("podSelector %v does not select the gateway pods %v", np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	if len(np.Spec.PodSelector.MatchLabels) == 0 || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("podSelector %v, policyTypes %v", np.Spec.PodSelector, np.Spec.PolicyTypes)
	}
	c := gatewayContainer(t, d)
	// from returns who may reach the container port named name: nil for
	// anyone, and ok false when no rule opens it.
	from := func(np *networkingv1.NetworkPolicy, name string) (peers []networkingv1.NetworkPolicyPeer, ok bool) {
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.IntValue() == int(containerPort(c, name)) {
					if len(rule.From) == 0 {
						return nil, true
					}
					peers, ok = append(peers, rule.From...), true
				}
			}
		}
		return peers, ok
	}
	for _, port := range []string{"http", "https"} {
		if peers, ok := from(np, port); !ok || peers != nil {
			t.Errorf("port %s: open %v to %+v; want open to anyone", port, ok, peers)
		}
	}
	peers, ok := from(np, "admin")
	if !ok || len(peers) != 1 || peers[0].NamespaceSelector == nil || peers[0].PodSelector == nil ||
		peers[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" ||
		peers[0].PodSelector.MatchLabels["app"] != "prometheus" {
		t.Errorf("admin port: open %v to %+v; want only Prometheus's pods in monitoring", ok, peers)
	}
	if strings.Contains(r.notes, "no pod may reach the admin port") {
		t.Errorf("NOTES warn about a closed admin port that adminFrom opens:\n%s", r.notes)
	}

	// proxyFrom narrows the proxy ports; without adminFrom the admin port
	// is closed, and the install notes say so.
	r = render(t, valuesFrom(t, nil, "networkPolicy.enabled=true", "networkPolicy.proxyFrom[0].ipBlock.cidr=10.0.0.0/8"))
	np = r.networkPolicies[releaseName]
	if peers, ok := from(np, "https"); !ok || len(peers) != 1 || peers[0].IPBlock == nil || peers[0].IPBlock.CIDR != "10.0.0.0/8" {
		t.Errorf("https port with proxyFrom: open %v to %+v", ok, peers)
	}
	if _, ok := from(np, "admin"); ok {
		t.Errorf("admin port open without adminFrom: %+v", np.Spec.Ingress)
	}
	if !strings.Contains(r.notes, "no pod may reach the admin port (9901") {
		t.Errorf("NOTES do not warn that Prometheus cannot scrape:\n%s", r.notes)
	}
}

// TestChartPprofIsOffUnlessAsked: gateway.pprof passes flexgate run --pprof.
func TestChartPprofIsOffUnlessAsked(t *testing.T) {
	if c := gatewayContainer(t, render(t, valuesFrom(t, nil)).deployments[releaseName]); slices.Contains(c.Args, "--pprof") {
		t.Errorf("--pprof by default: %q", c.Args)
	}
	if c := gatewayContainer(t, render(t, valuesFrom(t, nil, "gateway.pprof=true")).deployments[releaseName]); !slices.Contains(c.Args, "--pprof") {
		t.Errorf("gateway.pprof=true: args %q lack --pprof", c.Args)
	}
}

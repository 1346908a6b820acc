package deploy

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	releaseName = "flex-gateway"
	namespace   = "gateway-system"
	configDir   = "/etc/flexgate/conf.d"
	// kubeVersion stands for a current cluster: Helm built as a library
	// reports v1.20 to templates when it has no cluster to ask.
	kubeVersion = "1.33.0"
)

// serviceMonitor is the part of prometheus-operator's ServiceMonitor the
// chart renders; decoding strictly into it catches misspelt fields.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one `helm template` run decoded into API types.
type rendered struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs            map[string]*policyv1.PodDisruptionBudget
	serviceAccounts map[string]*corev1.ServiceAccount
	configMaps      map[string]*corev1.ConfigMap
	serviceMonitors map[string]*serviceMonitor
	networkPolicies map[string]*networkingv1.NetworkPolicy
	notes           string
}

// valuesFrom merges values files and --set style assignments as helm does.
func valuesFrom(t *testing.T, files []string, sets ...string) map[string]any {
	t.Helper()
	opts := values.Options{ValueFiles: files, Values: sets}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		t.Fatalf("cannot read values %v %v: %v", files, sets, err)
	}
	return vals
}

// renderChart runs what `helm template flex-gateway deploy/helm/flexgate -n
// gateway-system` runs, returning the error helm would print.
func renderChart(t *testing.T, vals map[string]any) (string, string, error) {
	t.Helper()
	return renderChartOn(t, vals, kubeVersion)
}

// renderChartOn is renderChart as `helm template --kube-version`.
func renderChartOn(t *testing.T, vals map[string]any, kubeVersion string) (string, string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("cannot load the chart: %v", err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.ClientOnly = true
	inst.DryRun = true
	inst.DryRunOption = "client"
	inst.Replace = true
	inst.ReleaseName = releaseName
	inst.Namespace = namespace
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	inst.KubeVersion = kv
	rel, err := inst.Run(chrt, vals)
	if err != nil {
		return "", "", err
	}
	return rel.Manifest, rel.Info.Notes, nil
}

// render renders and decodes every manifest strictly: a field unknown to the
// Kubernetes API type is an error, as is a kind the chart should not make.
func render(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	manifest, notes, err := renderChart(t, vals)
	if err != nil {
		t.Fatalf("helm template failed: %v", err)
	}
	r := &rendered{
		deployments:     map[string]*appsv1.Deployment{},
		services:        map[string]*corev1.Service{},
		hpas:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		configMaps:      map[string]*corev1.ConfigMap{},
		serviceMonitors: map[string]*serviceMonitor{},
		networkPolicies: map[string]*networkingv1.NetworkPolicy{},
		notes:           notes,
	}
	for key, doc := range releaseutil.SplitManifests(manifest) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", key, err, doc)
		}
		var obj interface{ GetName() string }
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			obj = decode(t, doc, &appsv1.Deployment{}, r.deployments)
		case "v1/Service":
			obj = decode(t, doc, &corev1.Service{}, r.services)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			obj = decode(t, doc, &autoscalingv2.HorizontalPodAutoscaler{}, r.hpas)
		case "policy/v1/PodDisruptionBudget":
			obj = decode(t, doc, &policyv1.PodDisruptionBudget{}, r.pdbs)
		case "v1/ServiceAccount":
			obj = decode(t, doc, &corev1.ServiceAccount{}, r.serviceAccounts)
		case "v1/ConfigMap":
			obj = decode(t, doc, &corev1.ConfigMap{}, r.configMaps)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			obj = decode(t, doc, &serviceMonitor{}, r.serviceMonitors)
		case "networking.k8s.io/v1/NetworkPolicy":
			obj = decode(t, doc, &networkingv1.NetworkPolicy{}, r.networkPolicies)
		default:
			t.Fatalf("%s: unexpected %s %s\n%s", key, tm.APIVersion, tm.Kind, doc)
		}
		if obj.GetName() == "" {
			t.Fatalf("%s: object without a name\n%s", key, doc)
		}
	}
	return r
}

func decode[T interface{ GetName() string }](t *testing.T, doc string, obj T, into map[string]T) T {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		t.Fatalf("manifest does not decode strictly into %T: %v\n%s", obj, err, doc)
	}
	if _, dup := into[obj.GetName()]; dup {
		t.Fatalf("two %T named %q", obj, obj.GetName())
	}
	into[obj.GetName()] = obj
	return obj
}

// lintChart runs `helm lint --strict` and returns its findings at warning
// level or above.
func lintChart(t *testing.T, vals map[string]any) []string {
	t.Helper()
	l := action.NewLint()
	l.Namespace = namespace
	l.Strict = true
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	l.KubeVersion = kv
	res := l.Run([]string{chartDir(t)}, vals)
	var out []string
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, m.Error())
		}
	}
	for _, err := range res.Errors {
		out = append(out, err.Error())
	}
	return slices.Compact(out)
}

func gatewayContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "flexgate" {
			return c
		}
	}
	t.Fatalf("deployment %s has no flexgate container", d.Name)
	return corev1.Container{}
}

// flagValue returns the value after flag in args, or "" if flag is absent.
func flagValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func mountAt(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volume(d *appsv1.Deployment, name string) (corev1.Volume, bool) {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func TestChartLintsCleanWithSeedAndDefaultValues(t *testing.T) {
	cases := map[string]string{
		"defaults":  "",
		"connected": "connected-values.yaml",
		"local":     "local-values.yaml",
	}
	for name, seed := range cases {
		t.Run(name, func(t *testing.T) {
			var files []string
			if seed != "" {
				files = []string{exampleFile(t, seed)}
			}
			if msgs := lintChart(t, valuesFrom(t, files)); len(msgs) > 0 {
				t.Fatalf("helm lint --strict %v:\n%s", files, strings.Join(msgs, "\n"))
			}
		})
	}
}

func TestChartSchemaNamesMisspeltKey(t *testing.T) {
	f := func(set, wantKey string) {
		t.Helper()
		msgs := strings.Join(lintChart(t, valuesFrom(t, nil, set)), "\n")
		if !strings.Contains(msgs, wantKey) {
			t.Errorf("helm lint with %s: want an error naming %q, got:\n%s", set, wantKey, msgs)
		}
		if _, _, err := renderChart(t, valuesFrom(t, nil, set)); err == nil || !strings.Contains(err.Error(), wantKey) {
			t.Errorf("helm template with %s: want an error naming %q, got %v", set, wantKey, err)
		}
	}
	f("deployment.replicaCont=3", "replicaCont")
	f("deployment.autoscaling.targetCPUUtilisationPercentage=70", "targetCPUUtilisationPercentage")
	f("anypointPlatform.conectedMode=true", "conectedMode")
	f("gateway.logLevel=verbose", "logLevel")
	f("servce.type=NodePort", "servce")
}

func TestLocalSeedMountsUserConfigMapAndTLS(t *testing.T) {
	r := render(t, valuesFrom(t, []string{exampleFile(t, "local-values.yaml")}))
	d, ok := r.deployments[releaseName]
	if !ok {
		t.Fatalf("no deployment/%s (the seed's kubectl rollout restart needs it); got %v", releaseName, keys(r.deployments))
	}
	c := gatewayContainer(t, d)
	if got, _ := flagValue(c.Args, "--config"); got != configDir {
		t.Errorf("args %q: --config = %q, want %q", c.Args, got, configDir)
	}
	if c.Args[0] != "run" {
		t.Errorf("args %q: want the run subcommand first", c.Args)
	}
	m, ok := mountAt(c, configDir)
	if !ok || !m.ReadOnly {
		t.Fatalf("config not mounted read-only at %s: %+v", configDir, c.VolumeMounts)
	}
	if v, _ := volume(d, m.Name); v.ConfigMap == nil || v.ConfigMap.Name != "flex-gateway-config" {
		t.Errorf("volume %q mounted at %s = %+v, want ConfigMap flex-gateway-config", m.Name, configDir, v)
	}
	if len(r.configMaps) != 0 {
		t.Errorf("the user's ConfigMap is external, but the chart renders %v too", keys(r.configMaps))
	}
	if _, ok := d.Spec.Template.Annotations["checksum/config"]; ok {
		t.Errorf("an external ConfigMap is reloaded live; a checksum annotation would only mislead: %v", d.Spec.Template.Annotations)
	}

	tls, ok := mountAt(c, "/tls")
	if !ok || !tls.ReadOnly || tls.Name != "tls-certs" {
		t.Fatalf("TLS secret not mounted read-only at /tls: %+v", c.VolumeMounts)
	}
	if v, _ := volume(d, "tls-certs"); v.Secret == nil || v.Secret.SecretName != "flex-gateway-tls" {
		t.Errorf("tls-certs volume = %+v, want Secret flex-gateway-tls", v)
	}

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want the default 2 without an HPA", d.Spec.Replicas)
	}
	if len(r.hpas) != 0 {
		t.Errorf("local seed enables no autoscaling, got HPAs %v", keys(r.hpas))
	}
	if slices.Contains(c.Args, "--connected-credentials") {
		t.Errorf("local mode passes --connected-credentials: %q", c.Args)
	}
	if !strings.Contains(r.notes, "flex-gateway-config") || strings.Contains(r.notes, "NOT SUPPORTED") {
		t.Errorf("NOTES for local mode should name the ConfigMap and not warn about connected mode:\n%s", r.notes)
	}
}

func TestConnectedSeedAutoscalesAndRefusesLoudly(t *testing.T) {
	r := render(t, valuesFrom(t, []string{exampleFile(t, "connected-values.yaml")}))
	d := r.deployments[releaseName]
	if d == nil {
		t.Fatalf("no deployment/%s: got %v", releaseName, keys(r.deployments))
	}
	if d.Spec.Replicas != nil {
		t.Errorf("the HPA owns the replica count, but the Deployment sets replicas=%d: every helm upgrade would reset it", *d.Spec.Replicas)
	}
	assertHPA(t, r, 2, 10, 70)

	c := gatewayContainer(t, d)
	dir, ok := flagValue(c.Args, "--connected-credentials")
	if !ok {
		t.Fatalf("connected mode must reach the gateway (so it can refuse it): args %q", c.Args)
	}
	m, ok := mountAt(c, dir)
	if !ok || !m.ReadOnly {
		t.Fatalf("credentials not mounted read-only at %s: %+v", dir, c.VolumeMounts)
	}
	if v, _ := volume(d, m.Name); v.Secret == nil || v.Secret.SecretName != "flex-credentials" {
		t.Errorf("volume at %s = %+v, want Secret flex-credentials", dir, v)
	}
	if !strings.Contains(r.notes, "CONNECTED MODE IS NOT SUPPORTED YET") {
		t.Errorf("NOTES must say connected mode does not work yet:\n%s", r.notes)
	}
}

func assertHPA(t *testing.T, r *rendered, minR, maxR, cpu int32) {
	t.Helper()
	h := r.hpas[releaseName]
	if h == nil {
		t.Fatalf("no HorizontalPodAutoscaler/%s: got %v", releaseName, keys(r.hpas))
	}
	if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != releaseName {
		t.Errorf("HPA targets %+v, want Deployment %s", h.Spec.ScaleTargetRef, releaseName)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != minR || h.Spec.MaxReplicas != maxR {
		t.Errorf("HPA scales %v..%d, want %d..%d", h.Spec.MinReplicas, h.Spec.MaxReplicas, minR, maxR)
	}
	var got *int32
	for _, m := range h.Spec.Metrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
			got = m.Resource.Target.AverageUtilization
		}
	}
	if got == nil || *got != cpu {
		t.Errorf("HPA CPU target = %v, want %d%%: %+v", got, cpu, h.Spec.Metrics)
	}
}

func TestAutoscalingAcceptedAtTopLevelAndUnderDeployment(t *testing.T) {
	top := render(t, valuesFrom(t, nil, "autoscaling.enabled=true", "autoscaling.minReplicas=2", "autoscaling.maxReplicas=10"))
	assertHPA(t, top, 2, 10, 70)
	if d := top.deployments[releaseName]; d.Spec.Replicas != nil {
		t.Errorf("replicas set while the HPA is on")
	}

	// A key under deployment.autoscaling wins, false included.
	off := render(t, valuesFrom(t, nil, "autoscaling.enabled=true", "deployment.autoscaling.enabled=false"))
	if len(off.hpas) != 0 {
		t.Errorf("deployment.autoscaling.enabled=false should turn the HPA off, got %v", keys(off.hpas))
	}
	mixed := render(t, valuesFrom(t, nil, "autoscaling.enabled=true", "deployment.autoscaling.maxReplicas=4", "autoscaling.targetCPUUtilizationPercentage=60"))
	assertHPA(t, mixed, 2, 4, 60)
}

func TestHPAMemoryTargetAndBehaviorPassThrough(t *testing.T) {
	r := render(t, valuesFrom(t, nil,
		"autoscaling.enabled=true",
		"autoscaling.targetMemoryUtilizationPercentage=80",
		"autoscaling.behavior.scaleDown.stabilizationWindowSeconds=300",
	))
	h := r.hpas[releaseName]
	var mem *int32
	for _, m := range h.Spec.Metrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceMemory {
			mem = m.Resource.Target.AverageUtilization
		}
	}
	if mem == nil || *mem != 80 {
		t.Errorf("memory target = %v, want 80", mem)
	}
	if b := h.Spec.Behavior; b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds != 300 {
		t.Errorf("behavior not passed through: %+v", h.Spec.Behavior)
	}
}

func TestDefaultPodIsHardenedAndProbedOnAdminPort(t *testing.T) {
	r := render(t, valuesFrom(t, nil))
	d := r.deployments[releaseName]
	if d == nil {
		t.Fatalf("no deployment/%s", releaseName)
	}
	pod := d.Spec.Template.Spec
	c := gatewayContainer(t, d)

	admin := containerPort(c, "admin")
	if admin != 9901 {
		t.Errorf("admin containerPort = %d, want 9901", admin)
	}
	if got, _ := flagValue(c.Args, "--admin-addr"); got != ":9901" {
		t.Errorf("--admin-addr = %q, want :9901 (the port the probes use)", got)
	}
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("probe on %s = %+v, want httpGet %s on the admin port", name, p, name)
		}
	}
	if c.ReadinessProbe.PeriodSeconds*c.ReadinessProbe.FailureThreshold > 10 {
		t.Errorf("readiness needs %ds to notice a draining pod, above the 5s drain delay plus slack", c.ReadinessProbe.PeriodSeconds*c.ReadinessProbe.FailureThreshold)
	}
	if containerPort(c, "http") != 8080 || containerPort(c, "https") != 8443 {
		t.Errorf("container ports = %+v, want http 8080 and https 8443", c.Ports)
	}

	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}

	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("container may run as root")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities = %+v, want all dropped", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccomp = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want a non-zero runAsUser (distroless nonroot is 65532)", psc)
	}

	// Graceful rollout: the preStop sleep, then SIGTERM starts the drain
	// delay, then in-flight requests get the shutdown timeout; all of that
	// must fit in the grace period or Kubernetes kills the pod mid-request.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatalf("no preStop sleep: %+v", c.Lifecycle)
	}
	drain, _ := flagValue(c.Args, "--drain-delay")
	shutdown, _ := flagValue(c.Args, "--shutdown-timeout")
	if drain != "5s" || shutdown != "20s" {
		t.Errorf("--drain-delay %q --shutdown-timeout %q, want 5s and 20s", drain, shutdown)
	}
	need := c.Lifecycle.PreStop.Sleep.Seconds + 5 + 20
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= need {
		t.Errorf("terminationGracePeriodSeconds = %v, want above preStop+drain+shutdown = %d", pod.TerminationGracePeriodSeconds, need)
	}
	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update may take pods away before new ones are ready: %+v", d.Spec.Strategy)
	}

	svc := r.services[releaseName]
	if svc == nil {
		t.Fatalf("no service/%s: %v", releaseName, keys(r.services))
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("service type = %s, want LoadBalancer", svc.Spec.Type)
	}
	ports := map[string]string{}
	for _, p := range svc.Spec.Ports {
		ports[fmt.Sprintf("%s:%d", p.Name, p.Port)] = p.TargetPort.String()
	}
	if ports["http:80"] != "http" || ports["https:443"] != "https" || len(ports) != 2 {
		t.Errorf("service ports %v, want http:80→http(8080), https:443→https(8443) and no admin port", ports)
	}

	if pdb := r.pdbs[releaseName]; pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget = %+v, want minAvailable 1", r.pdbs)
	}
	// One pod: a budget of one out of one would block every node drain.
	if single := render(t, valuesFrom(t, nil, "deployment.replicaCount=1")); len(single.pdbs) != 0 {
		t.Errorf("a PodDisruptionBudget for a single replica: %+v", single.pdbs)
	}
	if single := render(t, valuesFrom(t, nil, "deployment.replicaCount=1", "podDisruptionBudget.maxUnavailable=1")); len(single.pdbs) != 1 {
		t.Errorf("an explicit maxUnavailable was dropped")
	}
	sa := r.serviceAccounts[releaseName]
	if sa == nil || pod.ServiceAccountName != releaseName {
		t.Errorf("service account %v, pod uses %q", keys(r.serviceAccounts), pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the gateway never calls the Kubernetes API; the pod should not get a token")
	}
	if _, ok := flagValue(c.Args, "--config"); ok {
		t.Errorf("no config given: the gateway should run its quick-start, but args are %q", c.Args)
	}
	if d.Spec.Template.Annotations["prometheus.io/port"] != "9901" {
		t.Errorf("scrape annotations = %v", d.Spec.Template.Annotations)
	}
}

func TestChartConfigMapChangeRollsPods(t *testing.T) {
	f := func(upstream string) (string, *rendered) {
		t.Helper()
		r := render(t, valuesFrom(t, nil,
			"config.apiVersion=gateway.mulesoft.com/v1alpha1",
			"config.kind=Gateway",
			"config.spec.routes[0].id=api",
			"config.spec.routes[0].upstream.url="+upstream,
		))
		cm := r.configMaps[releaseName+"-config"]
		if cm == nil {
			t.Fatalf("no chart ConfigMap: %v", keys(r.configMaps))
		}
		if !strings.Contains(cm.Data["gateway-config.yaml"], upstream) {
			t.Errorf("ConfigMap data %q lacks the config", cm.Data)
		}
		d := r.deployments[releaseName]
		c := gatewayContainer(t, d)
		m, ok := mountAt(c, configDir)
		if v, _ := volume(d, m.Name); !ok || v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
			t.Errorf("chart ConfigMap not mounted at %s: %+v", configDir, d.Spec.Template.Spec.Volumes)
		}
		sum := d.Spec.Template.Annotations["checksum/config"]
		if len(sum) != 64 {
			t.Errorf("checksum/config = %q, want a sha256", sum)
		}
		return sum, r
	}
	a, _ := f("http://a:8080")
	b, _ := f("http://b:8080")
	if a == b {
		t.Error("changing the config leaves the pod template unchanged: pods would keep the old config")
	}

	// `--set-file config=gateway-config.yaml` keeps the user's file verbatim,
	// comments included.
	seedCfg, err := os.ReadFile(exampleFile(t, "gateway-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vals := valuesFrom(t, nil)
	vals["config"] = string(seedCfg)
	r := render(t, vals)
	cm := r.configMaps[releaseName+"-config"]
	if cm == nil || strings.TrimSpace(cm.Data["gateway-config.yaml"]) != strings.TrimSpace(string(seedCfg)) {
		t.Errorf("config given as a string is not kept verbatim: %q", cm)
	}

	// Naming an existing ConfigMap wins over `config`.
	r = render(t, valuesFrom(t, nil, "config.kind=Gateway", "deployment.configMapName=mine"))
	if len(r.configMaps) != 0 {
		t.Errorf("configMapName set, chart still renders %v", keys(r.configMaps))
	}
}

func TestChartRefusesUnsafeValuesWithFix(t *testing.T) {
	f := func(want string, sets ...string) {
		t.Helper()
		_, _, err := renderChart(t, valuesFrom(t, nil, sets...))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %v: want an error containing %q, got %v", sets, want, err)
		}
	}
	f("anypointPlatform.secretName is empty", "anypointPlatform.connectedMode=true")
	f("Raise it to at least 30", "deployment.terminationGracePeriodSeconds=10")
	f("lower minReplicas or raise maxReplicas", "autoscaling.enabled=true", "autoscaling.minReplicas=5", "autoscaling.maxReplicas=3")
	f("Set the other to null", "podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1")

	// An explicit grace period that covers the timings is kept.
	r := render(t, valuesFrom(t, nil, "deployment.terminationGracePeriodSeconds=60"))
	if g := r.deployments[releaseName].Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 60 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 60", g)
	}
}

func TestPreStopFallsBackToLongerDrainBefore130(t *testing.T) {
	manifest, _, err := renderChartOn(t, valuesFrom(t, nil), "1.29.4")
	if err != nil {
		t.Fatalf("helm template --kube-version 1.29.4: %v", err)
	}
	var d appsv1.Deployment
	for _, doc := range releaseutil.SplitManifests(manifest) {
		if strings.Contains(doc, "kind: Deployment") {
			if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := gatewayContainer(t, &d)
	if c.Lifecycle != nil {
		t.Errorf("Kubernetes 1.29 rejects the preStop sleep action, got %+v", c.Lifecycle)
	}
	if drain, _ := flagValue(c.Args, "--drain-delay"); drain != "10s" {
		t.Errorf("--drain-delay = %q, want 10s (5s drain + the 5s preStop sleep it replaces)", drain)
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 35 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 35", g)
	}
}

func TestServiceMonitorScrapesAdminPortOnly(t *testing.T) {
	r := render(t, valuesFrom(t, nil, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"))
	sm := r.serviceMonitors[releaseName]
	if sm == nil {
		t.Fatalf("no ServiceMonitor: %v", keys(r.serviceMonitors))
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("endpoints = %+v", sm.Spec.Endpoints)
	}
	if sm.Labels["release"] != "prom" {
		t.Errorf("labels = %v: Prometheus selects ServiceMonitors by label", sm.Labels)
	}
	// Exactly the admin Service matches the selector, not the public one.
	var matched []string
	for name, svc := range r.services {
		ok := true
		for k, v := range sm.Spec.Selector.MatchLabels {
			ok = ok && svc.Labels[k] == v
		}
		if ok {
			matched = append(matched, name)
		}
	}
	if !slices.Equal(matched, []string{releaseName + "-admin"}) {
		t.Fatalf("ServiceMonitor selects services %v, want only %s-admin", matched, releaseName)
	}
	admin := r.services[releaseName+"-admin"]
	if admin.Spec.Type != corev1.ServiceTypeClusterIP || len(admin.Spec.Ports) != 1 || admin.Spec.Ports[0].Name != "admin" {
		t.Errorf("admin service = %+v", admin.Spec)
	}
}

func TestExtraEnvsAndArgsPassThrough(t *testing.T) {
	r := render(t, valuesFrom(t, nil,
		"deployment.extraEnvs[0].name=INTROSPECTION_CLIENT_ID",
		"deployment.extraEnvs[0].valueFrom.secretKeyRef.name=introspection",
		"deployment.extraEnvs[0].valueFrom.secretKeyRef.key=client-id",
		"deployment.extraArgs[0]=--access-log",
	))
	c := gatewayContainer(t, r.deployments[releaseName])
	if e, ok := envVar(c, "INTROSPECTION_CLIENT_ID"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "introspection" {
		t.Errorf("env = %+v", c.Env)
	}
	if c.Args[len(c.Args)-1] != "--access-log" {
		t.Errorf("args = %q, want --access-log last", c.Args)
	}
}

// TestChartReadmeListsEveryValue keeps README.md honest: each leaf of
// values.yaml must appear in its table as `dotted.key`.
func TestChartReadmeListsEveryValue(t *testing.T) {
	chrt, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	readme := ""
	for _, f := range chrt.Files {
		if f.Name == "README.md" {
			readme = string(f.Data)
		}
	}
	if readme == "" {
		t.Fatal("chart has no README.md")
	}
	var missing []string
	for _, k := range leafKeys("", chrt.Values) {
		if !strings.Contains(readme, "`"+k+"`") {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("README.md does not list: %s", strings.Join(missing, ", "))
	}
}

func leafKeys(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			out = append(out, leafKeys(key, sub)...)
			continue
		}
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

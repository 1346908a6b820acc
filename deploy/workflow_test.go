package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"sigs.k8s.io/yaml"
)

const workflowPath = "github/deploy-gateway-config.yaml"

// lintWorkflow runs actionlint as `actionlint FILE` does, with shellcheck
// on the run: scripts when it is installed.
func lintWorkflow(t *testing.T, name string, content []byte) []*actionlint.Error {
	t.Helper()
	opts := &actionlint.LinterOptions{Color: actionlint.ColorOptionKindNever}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	} else if os.Getenv("FLEXGATE_REQUIRE_TOOLS") != "" {
		t.Fatal("shellcheck not found but FLEXGATE_REQUIRE_TOOLS is set; apt-get install shellcheck")
	} else {
		t.Log("NOTE: shellcheck not found; the workflow's run: scripts are not checked (apt-get install shellcheck)")
	}
	l, err := actionlint.NewLinter(&strings.Builder{}, opts)
	if err != nil {
		t.Fatalf("cannot start actionlint: %v", err)
	}
	errs, err := l.Lint(name, content, nil)
	if err != nil {
		t.Fatalf("actionlint could not read %s: %v", name, err)
	}
	return errs
}

func TestWorkflowPassesActionlint(t *testing.T) {
	content, err := os.ReadFile(workflowPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lintWorkflow(t, workflowPath, content) {
		t.Errorf("%s:%d:%d: %s [%s]", workflowPath, e.Line, e.Column, e.Message, e.Kind)
	}

	// The same linter must notice a broken dependency, or the pass above
	// proves nothing.
	broken := strings.Replace(string(content), "needs: validate", "needs: validat", 1)
	if errs := lintWorkflow(t, "broken.yaml", []byte(broken)); len(errs) == 0 {
		t.Error("actionlint accepted a job that needs a missing job")
	}
}

// workflow is the part of a GitHub Actions workflow the assertions read.
type workflow struct {
	Jobs map[string]struct {
		Needs any `json:"needs"`
		Steps []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			If   string `json:"if"`
			Run  string `json:"run"`
			Uses string `json:"uses"`
		} `json:"steps"`
	} `json:"jobs"`
	Env map[string]string `json:"env"`
}

func TestWorkflowValidatesBeforeTouchingTheCluster(t *testing.T) {
	content, err := os.ReadFile(workflowPath)
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(content, &wf); err != nil {
		t.Fatal(err)
	}
	scripts := func(job string) string {
		var b strings.Builder
		for _, s := range wf.Jobs[job].Steps {
			b.WriteString(s.Run + "\n")
		}
		return b.String()
	}
	validate := scripts("validate")
	for _, want := range []string{"yamllint", "flexgate validate", "helm lint", "helm template"} {
		if !strings.Contains(validate, want) {
			t.Errorf("validate job never runs %q", want)
		}
	}
	if strings.Contains(validate, "kubectl") || strings.Contains(validate, "KUBECONFIG") {
		t.Error("the validate job touches the cluster")
	}
	if wf.Jobs["deploy"].Needs != "validate" {
		t.Errorf("deploy needs %v, want validate: a bad config would reach the cluster", wf.Jobs["deploy"].Needs)
	}
	deploy := scripts("deploy")
	for _, want := range []string{
		"--dry-run=client | kubectl apply -f -",
		"kubectl rollout restart deployment/\"$RELEASE\"",
		"kubectl rollout status deployment/\"$RELEASE\"",
		"flexgate_config_last_reload_success_timestamp_seconds",
		"kubectl rollout undo",
		`>> "$GITHUB_ENV"`,
	} {
		if !strings.Contains(deploy, want) {
			t.Errorf("deploy job lacks %q", want)
		}
	}
	var rollback bool
	for _, s := range wf.Jobs["deploy"].Steps {
		rollback = rollback || strings.HasPrefix(s.If, "failure()")
	}
	if !rollback {
		t.Error("no step runs on failure to roll back")
	}

	// The ConfigMap it updates must be the one the example local values
	// mount, or the deploy changes nothing the pods read.
	var local struct {
		Deployment struct {
			ConfigMapName string `json:"configMapName"`
		} `json:"deployment"`
	}
	seed, err := os.ReadFile(exampleFile(t, "local-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(seed, &local); err != nil {
		t.Fatal(err)
	}
	if wf.Env["CONFIG_MAP"] != local.Deployment.ConfigMapName {
		t.Errorf("workflow applies ConfigMap %q, local-values.yaml mounts %q", wf.Env["CONFIG_MAP"], local.Deployment.ConfigMapName)
	}
	if wf.Env["RELEASE"] != releaseName || wf.Env["CHART"] != ".flexgate/deploy/helm/flexgate" {
		t.Errorf("release %q chart %q", wf.Env["RELEASE"], wf.Env["CHART"])
	}
	if _, err := os.Stat(filepath.Join(chartDir(t), "Chart.yaml")); err != nil {
		t.Errorf("the chart the workflow uses is missing: %v", err)
	}
}

func TestYAMLPassesProjectYamllintRules(t *testing.T) {
	yl := tool(t, "yamllint", "apt-get install yamllint")
	// A directory is linted with everything below it.
	args := []string{"-f", "parsable", "-s", "-c", ".yamllint", examplesDir(t), "github", "helm", "prometheus", ".yamllint"}
	out, err := exec.Command(yl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("yamllint -c deploy/.yamllint on examples/ and deploy/: %v\n%s", err, out)
	}

	// The rules bite: trailing spaces and a tab-broken indent fail.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("spec:  \n   routes: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(yl, "-f", "parsable", "-c", ".yamllint", bad).CombinedOutput(); err == nil {
		t.Errorf("yamllint accepted trailing spaces and a 3-space indent:\n%s", out)
	}
}

package deploy

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"helm.sh/helm/v3/pkg/chart/loader"
)

const imageVersion = "v9.9.9-test"

// dockerfile is deploy/Dockerfile read as instructions: continuation lines
// joined, comments dropped.
type dockerfile struct {
	lines []string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var df dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		df.lines = append(df.lines, cur.String())
		cur.Reset()
	}
	return df
}

// finalStage returns the instructions after the last FROM.
func (df dockerfile) finalStage() []string {
	last := 0
	for i, l := range df.lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	return df.lines[last:]
}

// execForm decodes the JSON array of ENTRYPOINT or CMD in the final stage.
func (df dockerfile) execForm(t *testing.T, instr string) []string {
	t.Helper()
	for _, l := range df.finalStage() {
		if rest, ok := strings.CutPrefix(l, instr+" "); ok {
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Fatalf("%s is not in exec form (a JSON array): %s", instr, l)
			}
			return v
		}
	}
	t.Fatalf("final stage has no %s", instr)
	return nil
}

var ldflagsRE = regexp.MustCompile(`-ldflags "([^"]*)"`)

// goBuildLine is the Dockerfile's go build command.
func (df dockerfile) goBuildLine(t *testing.T) string {
	t.Helper()
	for _, l := range df.lines {
		if strings.Contains(l, "go build") {
			return l
		}
	}
	t.Fatal("Dockerfile has no go build")
	return ""
}

func TestDockerfileRunsWhatTheChartMounts(t *testing.T) {
	df := readDockerfile(t)
	if n := len(df.lines); n == 0 || !strings.HasPrefix(df.lines[0], "ARG") && !strings.HasPrefix(df.lines[0], "FROM") {
		t.Fatalf("Dockerfile does not start with ARG or FROM: %v", df.lines)
	}
	froms := 0
	for _, l := range df.lines {
		if strings.HasPrefix(l, "FROM ") {
			froms++
		}
	}
	if froms < 2 {
		t.Errorf("want a multi-stage build, got %d FROM", froms)
	}
	final := df.finalStage()
	if !strings.HasPrefix(final[0], "FROM gcr.io/distroless/static") || !strings.HasSuffix(final[0], ":nonroot") {
		t.Errorf("final stage %q: want distroless/static :nonroot (no shell, no libc)", final[0])
	}
	if !slices.Contains(final, "USER 65532:65532") {
		t.Errorf("final stage does not run as the numeric non-root user 65532: %q", final)
	}
	if got := df.execForm(t, "ENTRYPOINT"); !slices.Equal(got, []string{"flexgate"}) {
		t.Errorf(`ENTRYPOINT = %q, want ["flexgate"]`, got)
	}
	cmd := df.execForm(t, "CMD")
	if !slices.Equal(cmd, []string{"run", "--config", "/etc/flexgate/conf.d"}) {
		t.Errorf(`CMD = %q, want ["run", "--config", "/etc/flexgate/conf.d"]`, cmd)
	}

	// The chart mounts the config where the image looks by default, so a
	// plain `docker run -v conf:/etc/flexgate/conf.d` and the pods agree.
	chrt, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	gw := chrt.Values["gateway"].(map[string]any)
	if gw["configDir"] != cmd[2] {
		t.Errorf("chart gateway.configDir = %v, image CMD reads %s", gw["configDir"], cmd[2])
	}
	ports := gw["ports"].(map[string]any)
	for _, p := range []string{"http", "https", "admin"} {
		if !slices.ContainsFunc(final, func(l string) bool {
			return strings.HasPrefix(l, "EXPOSE ") && slices.Contains(strings.Fields(l), jsonNumber(ports[p]))
		}) {
			t.Errorf("image does not EXPOSE the chart's %s port %v", p, ports[p])
		}
	}

	build := df.goBuildLine(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/flexgate"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build line lacks %q: %s", want, build)
		}
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  string
)

// gatewayBinary builds cmd/flexgate of this checkout exactly as the
// Dockerfile does and returns its path; once per test run.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "flexgate", "main.go")); err != nil {
		t.Skipf("SKIPPED: no gateway to build at %s/cmd/flexgate (%v)", root, err)
	}
	ldflags := ldflagsRE.FindStringSubmatch(readDockerfile(t).goBuildLine(t))
	if ldflags == nil {
		t.Fatal("Dockerfile's go build has no -ldflags \"...\"")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flexgate-deploy-test")
		if err != nil {
			buildErr = err.Error()
			return
		}
		buildPath = filepath.Join(dir, "flexgate")
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
			"-ldflags", strings.ReplaceAll(ldflags[1], "${VERSION}", imageVersion),
			"-o", buildPath, "./cmd/flexgate")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err.Error() + "\n" + string(out)
		}
	})
	if buildErr != "" {
		t.Fatalf("go build ./cmd/flexgate as the Dockerfile does: %s", buildErr)
	}
	return buildPath
}

func TestImageBinaryIsStaticAndVersioned(t *testing.T) {
	bin := gatewayBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("not an ELF binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary asks for a dynamic loader; distroless/static has none, so the container would not start")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary links %v; distroless/static has no libc", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("binary keeps its symbol table; -s -w should strip it")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), imageVersion) {
		t.Errorf("flexgate version = %q, %v; want it to report %s from -X main.version", out, err, imageVersion)
	}
}

// TestDockerfileParsesWithBuildKit reads the Dockerfile with the parser and
// lint rules `docker build` uses, so that a syntax slip or a rule `docker
// build --check` would flag fails here, where no Docker engine runs.
func TestDockerfileParsesWithBuildKit(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile:%d: %s", w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("Dockerfile:%d: %s: %s (%s)", line, rule, msg, url)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(stages) != 2 || stages[0].Name != "build" {
		t.Fatalf("want a build stage and a final stage, got %d stages", len(stages))
	}
	final := stages[len(stages)-1]
	if final.BaseName != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage is FROM %s", final.BaseName)
	}
	var copied bool
	for _, c := range final.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From == "build" {
			copied = slices.Equal(cp.SourcePaths, []string{"/out/flexgate"}) && cp.DestPath == "/usr/local/bin/flexgate"
		}
	}
	if !copied {
		t.Error("final stage does not COPY --from=build /out/flexgate to /usr/local/bin/flexgate (on distroless's PATH, so ENTRYPOINT [\"flexgate\"] resolves)")
	}
}

// Package flexgate holds the checks on the repository as a whole; the
// gateway's code is in the packages below it.
package flexgate

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// machinePath matches an absolute path that exists on one machine only: a
// checkout location (a directory under /work), a home directory (/home/<user>,
// /Users/<user>, /root/<name>, C:\Users\<user>) or a file in /tmp. It
// must start a path, so a directory named work inside a repository and "$HOME/x" are not one, and name
// something, so "/tmp" alone (TMPDIR=/tmp, a mount of /tmp) is not one.
// Paths inside the image and the chart (/etc/flexgate, /tls, /usr/local)
// are the same everywhere and are not matched.
var machinePath = regexp.MustCompile(`(?:^|[^A-Za-z0-9_.~$}-])(/(?:work|home|Users|root|tmp)/[A-Za-z0-9_.@+-]+|[A-Za-z]:\\Users\\[A-Za-z0-9_.-]+)`)

// allowedMachinePaths are the absolute paths a file may hold because they
// are not on a machine of ours, by file.
var allowedMachinePaths = map[string][]string{
	// The build stage's Go cache, root's home inside the golang image.
	"deploy/Dockerfile": {"/root/.cache"},
}

// TestNoMachinePaths: a path of the machine the repository was written on
// means nothing in another clone (tests that read it skip or fail there).
// Files and tests locate what they need relative to the checkout.
func TestNoMachinePaths(t *testing.T) {
	files := repositoryFiles(t)
	if len(files) == 0 {
		t.Fatal("found no files to check")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree, not yet in the index
			}
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 || name == "repository_test.go" {
			continue // binary, or this file, which spells out what it forbids
		}
		for _, f := range machinePaths(filepath.ToSlash(name), string(b)) {
			t.Errorf("%s: absolute path of a machine %q: locate it relative to the checkout (or, if it is inside the image, add it to allowedMachinePaths)", f.where, f.path)
		}
	}
}

type machinePathFinding struct{ where, path string }

// machinePaths returns the machine paths of one file's text, with file:line.
func machinePaths(name, text string) []machinePathFinding {
	var out []machinePathFinding
	for i, line := range strings.Split(text, "\n") {
		for _, m := range machinePath.FindAllStringSubmatch(line, -1) {
			if !allowed(name, m[1]) {
				out = append(out, machinePathFinding{name + ":" + strconv.Itoa(i+1), m[1]})
			}
		}
	}
	return out
}

func allowed(name, path string) bool {
	for _, a := range allowedMachinePaths[name] {
		if path == a {
			return true
		}
	}
	return false
}

// repositoryFiles are the files git tracks, and new ones it does not
// ignore, relative to the repository's root (this directory). Outside a
// git checkout (a source archive) every file is checked but .git and bin/.
func repositoryFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files
	}
	t.Logf("not a git checkout (%v): checking every file", err)
	var files []string
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || p == "bin") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestMachinePathRule pins what the rule takes for a machine's path and
// what it leaves alone.
func TestMachinePathRule(t *testing.T) {
	// Spelt in two pieces, so that this file holds no path of the kind it
	// looks for.
	const work = "/wo" + "rk/"
	for line, want := range map[string]string{
		`const seedDir = "` + work + `shared/seed"`:       work + "shared",
		"see ~/go or /home/alice/go/pkg/mod":              "/home/alice",
		"open /Users/bob/src/flexgate":                    "/Users/bob",
		"cp x /root/flexgate/":                            "/root/flexgate",
		"--config=/tmp/gw.yaml":                           "/tmp/gw.yaml",
		`C:\Users\carol\flexgate`:                         `C:\Users\carol`,
		"file:///home/dave/x":                             "/home/dave",
		"github.com/flexgate/flexgate" + work + "x":       "",
		"network" + work + "x":                            "",
		"cd $HOME/flexgate && ls ${HOME}" + work + "x":    "",
		"../shared/seed beside the checkout":              "",
		"TMPDIR=/tmp go test; docker run -v /tmp:/tmp":    "",
		"mountPath: /tls and /etc/flexgate/conf.d":        "",
		"COPY --from=build /out/flexgate /usr/local/bin/": "",
	} {
		got := ""
		if f := machinePaths("x", line); len(f) > 0 {
			got = f[0].path
		}
		if got != want {
			t.Errorf("%q: found %q, want %q", line, got, want)
		}
	}
	if f := machinePaths("deploy/Dockerfile", "--mount=type=cache,target=/root/.cache/go-build"); len(f) != 0 {
		t.Errorf("the Dockerfile's cache mount inside the image is reported: %v", f)
	}
}

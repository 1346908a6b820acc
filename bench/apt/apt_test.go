package apt

import (
	"context"
	"strings"
	"testing"
)

// noLog fails the test if Ensure says it installs anything.
func noLog(t *testing.T) func(string, ...any) {
	return func(format string, args ...any) {
		t.Errorf("Ensure logged %q: it must not install here", format)
	}
}

func TestEnsureDoesNothingWhenAllArePresent(t *testing.T) {
	present := []Tool{{"sh", "dash"}}
	if err := Ensure(context.Background(), present, true, noLog(t)); err != nil {
		t.Errorf("tools on PATH: %v", err)
	}
}

func TestEnsureWithoutInstallNamesTheMissingPackages(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	tools := []Tool{{"wrk", "wrk"}, {"redis-cli", "redis-tools"}}
	err := Ensure(context.Background(), tools, false, noLog(t))
	if err == nil || !strings.Contains(err.Error(), "missing wrk, redis-tools") || !strings.Contains(err.Error(), "apt-get install wrk redis-tools") {
		t.Errorf("Ensure = %v, want an error naming both packages and the command that installs them", err)
	}
}

func TestEnsureWithoutAptGetSaysSo(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no apt-get either
	err := Ensure(context.Background(), []Tool{{"wrk", "wrk"}}, true, noLog(t))
	if err == nil || !strings.Contains(err.Error(), "no apt-get") {
		t.Errorf("Ensure = %v, want an error saying there is no apt-get", err)
	}
}

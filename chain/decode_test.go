package chain

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/memguard"
)

func TestDecodeSubstitutesEnv(t *testing.T) {
	t.Setenv("FG_DEC_SECRET", "pa$$word")
	t.Setenv("FG_DEC_LIMIT", "42")
	var doc yaml.Node
	src := `a: &secret $env.FG_DEC_SECRET
b:
  limit: $env.FG_DEC_LIMIT
  secret: *secret
  expr: "$env.FG_DEC_SECRET-$request.method"
`
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	params := doc.Content[0].Content[3]
	var p struct {
		Limit  int        `yaml:"limit"`
		Secret string     `yaml:"secret"`
		Expr   Expression `yaml:"expr"`
	}
	if err := Decode(params, &p); err != nil {
		t.Fatal(err)
	}
	if p.Limit != 42 || p.Secret != "pa$$word" || p.Expr != "$env.FG_DEC_SECRET-$request.method" {
		t.Errorf("decoded %+v", p)
	}
	// The node is left as written, for the admin view.
	if v := params.Content[1].Value; v != "$env.FG_DEC_LIMIT" {
		t.Errorf("Decode changed the node: %q", v)
	}
}

func TestDecodeUnsetEnvIsAnErrorAtTheValue(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("secret: $env.FG_DEC_UNSET_VARIABLE\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Secret string `yaml:"secret"`
	}
	err := Decode(doc.Content[0], &p)
	if err == nil || !strings.Contains(err.Error(), "1:9: environment variable FG_DEC_UNSET_VARIABLE is not set") {
		t.Fatalf("error = %v", err)
	}
}

// TestDecodeBoundsAliases: Decode copies the parameters with their aliases
// expanded; a few hundred bytes of nested aliases must not become billions
// of values, nor an anchor that contains its own alias an endless copy.
func TestDecodeBoundsAliases(t *testing.T) {
	memguard.Run(t, 256<<20, func(t *testing.T) {
		laughs := "headers:\n  X-A: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
		for c := 'b'; c <= 'i'; c++ {
			laughs += fmt.Sprintf("  X-%c: &%c [%s]\n", c-'a'+'A', c, strings.TrimSuffix(strings.Repeat("*"+string(c-1)+", ", 9), ", "))
		}
		for _, c := range []struct{ src, want string }{
			{laughs, "7:12: alias *e stands for 66430 values"},
			{"headers: &h\n  X-A: [*h]\n", "2:9: alias *h refers to the anchor &h at line 1, which contains it"},
		} {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(c.src), &doc); err != nil {
				t.Fatal(err)
			}
			var p struct {
				Headers map[string]any `yaml:"headers"`
			}
			if err := Decode(doc.Content[0], &p); err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error = %v, want %s", err, c.want)
			}
		}
	})
}

// TestDecodeChecksParametersBehindAliases: strict decoding holds for a
// block reused through an alias too; the error is where the block is written.
func TestDecodeChecksParametersBehindAliases(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("base: &w {limit: 10, perod: 60}\nparams:\n  windows: [*w]\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Windows []struct {
			Limit  int `yaml:"limit"`
			Period int `yaml:"period"`
		} `yaml:"windows"`
	}
	err := Decode(doc.Content[0].Content[3], &p)
	if err == nil || !strings.HasPrefix(err.Error(), `1:22: unknown parameter "perod"; known parameters: limit, period`) {
		t.Fatalf("error = %v", err)
	}
}

// TestDecodeSaysWhatAParameterTakes: a value of the wrong shape is refused
// at its line and column in words a user reads, never yaml's or Go's
// ("cannot unmarshal !!float `1e30` into int64"); a number is checked
// against its field's bounds, whatever the value's source.
func TestDecodeSaysWhatAParameterTakes(t *testing.T) {
	t.Setenv("FG_DEC_SPACED", " -3")
	t.Setenv("FG_DEC_SEVEN", "7")
	type window struct {
		Limit int64 `yaml:"limit" min:"1" max:"1000"`
	}
	type params struct {
		Limit   int64             `yaml:"limit" min:"1" max:"1000"`
		Depth   *int              `yaml:"depth" min:"-1" max:"64" note:"-1: no limit"`
		Period  float64           `yaml:"period" min:"0.001" max:"60"`
		Name    Expression        `yaml:"name"`
		On      bool              `yaml:"on"`
		Headers map[string]string `yaml:"headers"`
		Windows []window          `yaml:"windows"`
		Wait    time.Duration     `yaml:"wait"`
		Grace   time.Duration     `yaml:"grace" min:"0s" max:"10m" note:"0: none"`
	}
	f := func(src, want string) {
		t.Helper()
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		var p params
		err := Decode(doc.Content[0], &p)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error = %v\nwant %s", src, err, want)
		}
	}
	f("limit: 1e30", `1:8: limit must be a whole number from 1 to 1000, not "1e30"`)
	f("limit: 99999999999999999999", "1:8: limit must be a whole number from 1 to 1000, not 99999999999999999999")
	f("limit: 0", "1:8: limit must be a whole number from 1 to 1000, not 0")
	f("limit: 1.5", `1:8: limit must be a whole number from 1 to 1000, not "1.5"`)
	f("limit: 0x10", `1:8: limit must be a whole number from 1 to 1000, not "0x10"`)
	f("limit: [1]", "1:8: limit must be a whole number from 1 to 1000, not a list")
	f("limit: $env.FG_DEC_SPACED", `1:8: limit must be a whole number from 1 to 1000, not " -3"; remove the spaces around the value`)
	f("depth: 65", "1:8: depth must be a whole number from -1 to 64 (-1: no limit), not 65")
	f("period: .nan", `1:9: period must be a number from 0.001 to 60, not ".nan"`)
	f("period: 1e400", "1:9: period must be a number from 0.001 to 60, not 1e400")
	f("name: [a]", "1:7: name must be a string, not a list")
	f("on: maybe", `1:5: on must be true or false, not "maybe"`)
	f("headers: [a]", "1:10: headers must be a mapping, not a list")
	f("headers: {a: [1]}", "1:14: headers a must be a string, not a list")
	f("windows: {limit: 1}", "1:10: windows must be a list, not a mapping")
	f("windows: [5]", `1:11: each entry of windows must be a mapping with parameters limit, not "5"`)
	f("windows: [{limit: 2000}]", "1:19: limit must be a whole number from 1 to 1000, not 2000")
	f("wait: 30", `1:7: wait must be a duration with a unit like 500ms, 2s or 1m, not "30"`)
	f("wait: [1s]", "1:7: wait must be a duration with a unit like 500ms, 2s or 1m, not a list")
	// Without tags, a duration is one of the config's, 1ms to 168h.
	f("wait: 169h", `1:7: wait "169h" is out of range: use 1ms to 168h`)
	f("wait: -1s", `1:7: wait "-1s" is out of range: use 1ms to 168h`)
	// Written as a duration but longer than Go holds: out of range, not
	// written wrong.
	f("wait: 99999999999h", `1:7: wait "99999999999h" is out of range: use 1ms to 168h`)
	f("wait: -99999999999h", `1:7: wait "-99999999999h" is out of range: use 1ms to 168h`)
	f("grace: 1h", `1:8: grace "1h" is out of range: use 0s to 10m (0: none)`)
	// Only true and false, as in the rest of the config: YAML 1.1's
	// yes, no, on, off, y and n are words.
	for _, word := range []string{"yes", "no", "on", "off", "y", "n", "Yes", "OFF"} {
		f("on: "+word, fmt.Sprintf("1:5: on must be true or false, not %q", word))
	}
	f("on: [true]", "1:5: on must be true or false, not a list")

	// What reads as a number does, quoted or from a variable, and the
	// node keeps what was written.
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("limit: \"1_000\"\ndepth: $env.FG_DEC_SEVEN\nperiod: 2.5\nwait: 1m30s\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var p params
	if err := Decode(doc.Content[0], &p); err != nil {
		t.Fatal(err)
	}
	if p.Limit != 1000 || p.Depth == nil || *p.Depth != 7 || p.Period != 2.5 || p.Wait != 90*time.Second {
		t.Errorf("decoded %+v", p)
	}
	if v := doc.Content[0].Content[1].Value; v != "1_000" {
		t.Errorf("Decode changed the node: %q", v)
	}
	// Decimal, as in the rest of the config: YAML 1.1 read 017 as 15.
	if err := yaml.Unmarshal([]byte("limit: 017\n"), &doc); err != nil {
		t.Fatal(err)
	}
	if err := Decode(doc.Content[0], &p); err != nil || p.Limit != 17 {
		t.Errorf("limit: 017 decoded as %d, %v", p.Limit, err)
	}
	// A boolean reads as true or false whatever its case, quoted or from
	// a variable, as elsewhere in the config.
	t.Setenv("FG_DEC_TRUE", "true")
	for _, src := range []string{"on: TRUE", "on: \"true\"", "on: True", "on: $env.FG_DEC_TRUE"} {
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		p.On = false
		if err := Decode(doc.Content[0], &p); err != nil || !p.On {
			t.Errorf("%s decoded as %v, %v", src, p.On, err)
		}
	}
	if err := yaml.Unmarshal([]byte("on: \"False\"\ngrace: 0s\n"), &doc); err != nil {
		t.Fatal(err)
	}
	p.On, p.Grace = true, time.Second
	if err := Decode(doc.Content[0], &p); err != nil || p.On || p.Grace != 0 {
		t.Errorf("decoded on %v, grace %v: %v", p.On, p.Grace, err)
	}
}

// TestDecodeReportsEveryProblem: a policy's parameters with several
// mistakes get one error for each, at its place, so that a user fixes
// them in one pass; a value whose variable is unset is not also said to be
// of the wrong shape.
func TestDecodeReportsEveryProblem(t *testing.T) {
	var doc yaml.Node
	src := `limit: 0
bogus: 1
on: yes
items: [{name: a, extra: 1}, {name: [b]}]
count: $env.FG_DEC_UNSET_COUNT
`
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Limit int  `yaml:"limit" min:"1" max:"10"`
		On    bool `yaml:"on"`
		Items []struct {
			Name string `yaml:"name"`
		} `yaml:"items"`
		Count int `yaml:"count" min:"1" max:"10"`
	}
	err := Decode(doc.Content[0], &p)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"1:8: limit must be a whole number from 1 to 10, not 0",
		`2:1: unknown parameter "bogus"`,
		`3:5: on must be true or false, not "yes"`,
		`4:19: unknown parameter "extra"`,
		"4:37: name must be a string, not a list",
		"5:8: environment variable FG_DEC_UNSET_COUNT is not set",
	}
	// In the order written.
	got := flatten(err)
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].Error(), w) {
			t.Errorf("error %d is %q, want %q…", i+1, got[i], w)
		}
	}
}

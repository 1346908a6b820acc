package chaintest_test

import (
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// counted is a policy that counts how often it was provisioned and closed.
type counted struct {
	Tag        string `yaml:"tag"`
	provisions int
	closes     int
}

func (p *counted) Validate(env *chain.Env) error {
	if p.Tag == "" {
		return chain.Errorf(env.Spec.Params, "tag is required")
	}
	return nil
}

func (p *counted) Provision(env *chain.Env) error {
	p.provisions++
	env.Metrics.GetOrCreateCounter(`chaintest_provisions_total{route="` + env.Route.ID + `"}`).Inc()
	return nil
}

func (p *counted) Close() error { p.closes++; return nil }

var made []*counted

func init() {
	chain.Register(chain.Registration{Name: "chaintest-counted", New: func() chain.Policy {
		p := new(counted)
		made = append(made, p)
		return p
	}})
}

// TestCompileWithClosesEachInstanceOnce: a reload through Options.Old
// carries over what did not change and retires the replaced set at once;
// a failed reload leaves it alone; when the test ends, every instance
// provisioned has been closed exactly once.
func TestCompileWithClosesEachInstanceOnce(t *testing.T) {
	start := len(made)
	t.Run("reloads", func(t *testing.T) {
		doc := func(tags ...string) string {
			var b strings.Builder
			for _, tag := range tags {
				b.WriteString("- chaintest-counted: {tag: " + tag + "}\n")
			}
			return chaintest.Doc{Policies: b.String()}.String()
		}
		first, _, err := chaintest.CompileWith(t, doc("a", "b"), chaintest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, b := first.Chains[0].Policies[0].Policy.(*counted), first.Chains[0].Policies[1].Policy.(*counted)
		next, _, err := chaintest.CompileWith(t, doc("a", "c"), chaintest.Options{Old: first})
		if err != nil {
			t.Fatal(err)
		}
		if next.Chains[0].Policies[0].Policy != a || b.closes != 1 || a.closes != 0 {
			t.Errorf("after the reload: a carried over %v, closed %d; b closed %d", next.Chains[0].Policies[0].Policy == a, a.closes, b.closes)
		}
		if _, _, err := chaintest.CompileWith(t, doc("a", "\"\""), chaintest.Options{Old: next}); err == nil {
			t.Fatal("a policy without its tag compiled")
		}
		if _, _, err := chaintest.CompileWith(t, doc("a"), chaintest.Options{Old: next}); err != nil {
			t.Fatal(err)
		}
	})
	for _, p := range made[start:] {
		if p.closes != p.provisions {
			t.Errorf("policy %s: provisioned %d times, closed %d", p.Tag, p.provisions, p.closes)
		}
	}
}

// TestDoc: whatever the route's methods and clients, the policies list
// begins on PoliciesLine, indented by 8 columns; the options reach the
// compiler.
func TestDoc(t *testing.T) {
	doc := chaintest.Doc{
		RouteID:  "orders",
		Path:     "/orders/*",
		Methods:  []string{"GET", "POST"},
		Clients:  []string{"{id: app, secret: s}"},
		Policies: "\n  - chaintest-counted: {tag: x}\n  - chaintest-counted\n",
	}
	cfg, _ := chaintest.Load(t, doc.String())
	r := cfg.Routes[0]
	if r.ID != "orders" || strings.Join(r.Paths, " ") != "/orders/*" || strings.Join(r.Methods, " ") != "GET POST" ||
		len(cfg.Clients) != 1 || cfg.Clients[0].ID != "app" || len(r.Policies) != 2 {
		t.Fatalf("loaded %+v with clients %+v", r, cfg.Clients)
	}
	_, path, err := chaintest.CompileWith(t, doc.String(), chaintest.Options{ValidateOnly: true})
	if want := path + ":14:11: chaintest-counted: tag is required"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %s", err, want)
	}
	set := metrics.NewSet()
	if _, _, err := chaintest.CompileWith(t, chaintest.Gateway("        - chaintest-counted: {tag: y}\n"), chaintest.Options{Metrics: set}); err != nil {
		t.Fatal(err)
	}
	if n := set.GetOrCreateCounter(`chaintest_provisions_total{route="r"}`).Get(); n != 1 {
		t.Errorf("the policy registered %d provisions in the set given, want 1", n)
	}
}

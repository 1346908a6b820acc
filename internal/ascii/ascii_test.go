package ascii

import "testing"

func TestEqualLower(t *testing.T) {
	for _, c := range []struct {
		b, lower string
		want     bool
	}{
		{"no-cache", "no-cache", true},
		{"No-Cache", "no-cache", true},
		{"APPLICATION", "application", true},
		{"no-cach", "no-cache", false},
		{"no-cachee", "no-cache", false},
		{"no_cache", "no-cache", false},
		// The Kelvin sign (U+212A) folds to k in Unicode, not here.
		{"\u212aeep-alive", "keep-alive", false},
		{"", "", true},
	} {
		if got := EqualLower([]byte(c.b), c.lower); got != c.want {
			t.Errorf("EqualLower(%q, %q) = %v, want %v", c.b, c.lower, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { EqualLower([]byte("X-Forwarded-For"), "x-forwarded-for") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"X-Request-Id": true, "!#$%&'*+-.^_`|~09azAZ": true,
		"": false, "Bad Name": false, "X:Y": false, "X@Y": false, "X(Y)": false, "X\x7f": false, "Ä": false, "X\tY": false,
	} {
		if got := IsToken(s); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}

package metriclabel

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":             `""`,
		"orders":       `"orders"`,
		`a"b\c`:        `"a\"b\\c"`,
		"line\nbreak":  `"line\nbreak"`,
		"tab\there":    "\"tab\there\"",
		"café\u2028x":  "\"café\u2028x\"",
		`already\"esc`: `"already\\\"esc"`,
	} {
		got := Quote(in)
		if got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
		// The series name is one the metrics library accepts.
		if err := metrics.ValidateMetric(`m{l=` + got + `}`); err != nil {
			t.Errorf("Quote(%q): %v", in, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Quote(`route "a"`) }); n > 1 {
		t.Errorf("Quote allocates %v times, want at most 1", n)
	}
}

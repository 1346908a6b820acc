package tracectx

import (
	"strings"
	"testing"
)

// The examples of W3C Trace Context level 1, section 3.2.
const specExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestAppendTraceparentContinuesValidTrace(t *testing.T) {
	f := func(in, wantTrace, wantFlags string) {
		t.Helper()
		out := string(AppendTraceparent(nil, []byte(in)))
		if !validTraceparent([]byte(out)) || len(out) != TraceparentLen {
			t.Fatalf("AppendTraceparent(%q) = %q: not a valid version-00 traceparent", in, out)
		}
		if got := out[3:35]; got != wantTrace {
			t.Fatalf("AppendTraceparent(%q): trace id %q, want %q (the trace must continue)", in, got, wantTrace)
		}
		if got := out[53:]; got != wantFlags {
			t.Fatalf("AppendTraceparent(%q): flags %q, want %q", in, got, wantFlags)
		}
		if in[36:52] == out[36:52] {
			t.Fatalf("AppendTraceparent(%q) = %q: the gateway's hop must get a new span id", in, out)
		}
	}
	f(specExample, "4bf92f3577b34da6a3ce929d0e0e4736", "01")
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "4bf92f3577b34da6a3ce929d0e0e4736", "00")
	// A later version is parsed as far as version 00 goes and sent as 00.
	f("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
	f("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", "4bf92f3577b34da6a3ce929d0e0e4736", "09")
}

func TestAppendTraceparentStartsNewTraceOnBadInput(t *testing.T) {
	for _, in := range []string{
		"",
		"garbage",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", // 00 is exactly 55 bytes
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // later version needs '-'
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",  // misplaced dash
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  // bad flags
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		out := string(AppendTraceparent(nil, []byte(in)))
		if !validTraceparent([]byte(out)) || len(out) != TraceparentLen || !strings.HasPrefix(out, "00-") {
			t.Fatalf("AppendTraceparent(%q) = %q: not a valid version-00 traceparent", in, out)
		}
		if strings.Contains(in, out[3:35]) {
			t.Fatalf("AppendTraceparent(%q) = %q: a malformed traceparent must start a new trace", in, out)
		}
		if out[53:] != "01" {
			t.Fatalf("AppendTraceparent(%q) = %q: a new trace is flagged sampled", in, out)
		}
	}
}

func TestNewTracesAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		out := string(AppendTraceparent(nil, nil))
		if seen[out[3:35]] {
			t.Fatalf("trace id %s generated twice", out[3:35])
		}
		seen[out[3:35]] = true
	}
}

func TestTraceID(t *testing.T) {
	if got := string(TraceID([]byte(specExample))); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("TraceID = %q", got)
	}
	if got := TraceID([]byte("nope")); got != nil {
		t.Fatalf("TraceID of garbage = %q, want nil", got)
	}
}

func TestAppendRequestID(t *testing.T) {
	keep := []string{"abc", "req-42", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", strings.Repeat("x", 200)}
	for _, in := range keep {
		if got := string(AppendRequestID(nil, []byte(in))); got != in {
			t.Fatalf("AppendRequestID(%q) = %q: a valid id must be kept", in, got)
		}
	}
	replace := []string{"", "has space", "tab\there", "new\nline", "quote\"", `back\slash`, "caf\xc3\xa9", strings.Repeat("x", 201), "nul\x00"}
	for _, in := range replace {
		got := string(AppendRequestID(nil, []byte(in)))
		if got == in || len(got) != GeneratedRequestIDLen || !isLowerHex([]byte(got)) {
			t.Fatalf("AppendRequestID(%q) = %q: want a new 32-hex-digit id", in, got)
		}
	}
	a, b := AppendRequestID(nil, nil), AppendRequestID(nil, nil)
	if string(a) == string(b) {
		t.Fatalf("two generated ids are equal: %s", a)
	}
}

func TestNoAllocations(t *testing.T) {
	buf := make([]byte, 0, 128)
	in := []byte(specExample)
	if n := testing.AllocsPerRun(1000, func() {
		buf = AppendTraceparent(buf[:0], in)
		buf = AppendTraceparent(buf[:0], nil)
		buf = AppendRequestID(buf[:0], nil)
		buf = AppendRequestID(buf[:0], in)
	}); n != 0 {
		t.Fatalf("allocations per request = %v, want 0", n)
	}
}

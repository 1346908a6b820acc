package proxy

import (
	"errors"
	"io"
	"testing"

	"github.com/flexgate/flexgate/chain"
)

// refusingAtEnd gives its body, then refuses it as a policy's body reader
// does when what came last breaks a limit (or the client fails there).
type refusingAtEnd struct {
	body []byte
	err  error
}

func (r *refusingAtEnd) Read(p []byte) (int, error) {
	if len(r.body) == 0 {
		return 0, r.err
	}
	n := copy(p, r.body)
	r.body = r.body[n:]
	return n, nil
}

type bodyRefusal struct{ rej *chain.Rejection }

func (e bodyRefusal) Error() string               { return "refused" }
func (e bodyRefusal) Rejection() *chain.Rejection { return e.rej }

// TestLimitedBodyPassesOnAnErrorAtTheLimit: a body exactly at the route's
// limit whose next read fails (a policy's refusal, the client's reset)
// must not read as a complete body: the upstream would get the bytes
// before it, never checked to their end, as a whole request.
func TestLimitedBodyPassesOnAnErrorAtTheLimit(t *testing.T) {
	rej := &chain.Rejection{Status: 400, Reason: "json_too_deep"}
	reset := errors.New("connection reset by peer")
	for _, tc := range []struct {
		name string
		err  error
	}{{"policy refusal", bodyRefusal{rej}}, {"client failure", reset}} {
		b := &limitedBody{r: &refusingAtEnd{body: []byte("0123456789"), err: tc.err}, left: 10, limited: true}
		got, err := io.ReadAll(b)
		if err == nil {
			t.Errorf("%s: read %q as a complete body", tc.name, got)
		}
		if tc.err == reset && !b.clientErr {
			t.Errorf("%s: not noted as the client's failure", tc.name)
		}
		if _, ok := tc.err.(bodyRefusal); ok && b.rejected != rej {
			t.Errorf("%s: the policy's rejection was lost (%v)", tc.name, b.rejected)
		}
	}
	b := &limitedBody{r: &refusingAtEnd{body: []byte("0123456789"), err: io.EOF}, left: 10, limited: true}
	if got, err := io.ReadAll(b); err != nil || string(got) != "0123456789" {
		t.Errorf("a body exactly at the limit: %q, %v", got, err)
	}
}

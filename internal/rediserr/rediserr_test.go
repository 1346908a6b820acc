package rediserr

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flexgate/flexgate/policies/ratelimit/redistest"
)

// TestWriteRefused: Redis's own answers to a write it refuses, from a
// command or from a script, are told apart from other errors, each with
// what the operator should do.
func TestWriteRefused(t *testing.T) {
	cl := func(t *testing.T, srv *redistest.Server) rueidis.Client {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}, ForceSingleClient: true, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := map[string]string{"READONLY": "the master", "OOM": "maxmemory", "NOREPLICAS": "min-replicas-to-write"}
	for _, r := range redistest.WriteRefusals {
		t.Run(r.Name, func(t *testing.T) {
			srv := redistest.Start(t)
			c := cl(t, srv)
			srv.RefuseWrites(r)
			for what, err := range map[string]error{
				"SET":    c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(),
				"script": c.Do(ctx, c.B().Eval().Script("return redis.call('SET', KEYS[1], 'v')").Numkeys(1).Key("k").Build()).Error(),
			} {
				if err == nil || !strings.HasPrefix(err.Error(), r.Code) {
					t.Fatalf("%s: Redis answered %v, want %s", what, err, r.Code)
				}
				if a := WriteRefused(err); !strings.Contains(a, want[r.Code]) {
					t.Errorf("%s refused with %q: advice %q, want it to name %q", what, err, a, want[r.Code])
				}
			}
			// Reads are answered.
			if err := c.Do(ctx, c.B().Get().Key("k").Build()).Error(); !rueidis.IsRedisNil(err) {
				t.Errorf("GET: %v", err)
			}
		})
	}

	// A failed snapshot, and Redis 6's wrapping of a script's error, as
	// Redis answers them (a script can answer any error; Redis drops the
	// code ERR from what it answers).
	c := cl(t, redistest.Start(t))
	for answer, want := range map[string]string{
		"MISCONF Errors writing to the disk": "snapshot",
		"ERR Error running script (call to f_1028a5dba704e1d8a01fd96efeba25bb78f62df2): @user_script:4: @user_script: 4: -READONLY You can't write against a read only replica.": "the master",
		"ERR unknown command":                     "",
		"WRONGTYPE Operation against a key":       "",
		"ERR value mentions OOM or READONLY here": "",
	} {
		err := c.Do(ctx, c.B().Eval().Script("return redis.error_reply(ARGV[1])").Numkeys(0).Arg(answer).Build()).Error()
		if err == nil || !strings.HasSuffix(answer, err.Error()) {
			t.Fatalf("Redis answered %v, want %q", err, answer)
		}
		if a := WriteRefused(err); want == "" && a != "" || !strings.Contains(a, want) {
			t.Errorf("%q: advice %q, want one naming %q", answer, a, want)
		}
	}
	for _, err := range []error{nil, context.DeadlineExceeded, errors.New("READONLY said a proxy"),
		c.Do(ctx, c.B().Get().Key("absent").Build()).Error()} {
		if a := WriteRefused(err); a != "" {
			t.Errorf("%v: advice %q, want none", err, a)
		}
	}
}

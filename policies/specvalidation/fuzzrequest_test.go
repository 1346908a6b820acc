package specvalidation_test

import (
	"encoding/json"
	"testing"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// FuzzRequest: no request makes the petstore's validation panic; a
// refusal is one of the policy's reasons, and its violations are a JSON
// array of objects with a path and a message.
func FuzzRequest(f *testing.F) {
	c := chaintest.MustChain(f, policy(f, "    strictParams: true\n"))
	for _, r := range validRequests {
		h := ""
		if len(r.headers) == 2 {
			h = r.headers[1]
		}
		f.Add(r.method, r.uri, h, r.body)
	}
	f.Add("POST", "/api/pets", "", `{"name":"`+"\xff"+`","age":-1,"name":1}`)
	f.Add("GET", "/api/pets/7/photos/a.jpg?sizes=1|x|%7C", "", "")
	f.Add("PUT", "/api/pets?tags=a&tags=&limit=1e400", "0af7651916cd43dd", "[[[[[[")
	reasons := map[string]bool{"unknown_operation": true, "validation_failed": true, "body_too_large": true, "json_too_deep": true,
		"invalid_json": true, "unsupported_media_type": true, "missing_body": true, "unexpected_body": true}
	f.Fuzz(func(t *testing.T, method, uri, header, body string) {
		if method == "" || len(uri) == 0 || uri[0] != '/' {
			return
		}
		r := send(c, method, uri, body, "Content-Type", "application/json", "X-Request-Id", header, "Cookie", "session="+header)
		if r.rej == nil {
			return
		}
		if !reasons[r.rej.Reason] {
			t.Fatalf("%s %s: reason %q", method, uri, r.rej.Reason)
		}
		if r.rej.Reason != "validation_failed" {
			return
		}
		var v []struct {
			Path    *string `json:"path"`
			Message string  `json:"message"`
		}
		if err := json.Unmarshal([]byte(r.details), &v); err != nil || len(v) == 0 {
			t.Fatalf("%s %s: violations %q: %v", method, uri, r.details, err)
		}
		for _, e := range v {
			if e.Path == nil || e.Message == "" {
				t.Fatalf("%s %s: violation without path or message: %s", method, uri, r.details)
			}
		}
	})
}

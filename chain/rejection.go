package chain

// Rejection is a policy's "no": the status the client gets, a
// machine-readable reason for X-Flexgate-Error and metrics, and a
// human-readable message for the JSON body. Policies build their rejections
// once, at provision time, and return the same pointers on every request, so
// a Rejection must be treated as immutable.
type Rejection struct {
	// Status is the HTTP status code (401, 403, 429, …).
	Status int
	// Reason is a short machine-readable token: "rate_limited",
	// "invalid_token". It becomes X-Flexgate-Error.
	Reason string
	// Message is a sentence for the JSON body.
	Message string
	// Policy names the policy that said no (Env.Reject fills it in).
	Policy string
	// DetailKey, when set, names the field of the JSON body that carries
	// Exchange.Details (raw JSON).
	DetailKey string
	// Answer marks the policy's own answer rather than a refusal: the
	// policy has written the whole response into ctx.Response (a CORS
	// preflight's 204 and its headers) and the gateway sends it as it is,
	// without an error body, the route's response steps or the upstream.
	// It is not counted as a rejection. Build it with Env.Answer.
	Answer bool
}

// Answered is what a request step returns when it has answered the request
// itself (a cache hit): ctx.Response holds the answer. The request steps
// after it do not run and nothing reaches the upstream; the gateway sends
// the answer as it is (adding X-Request-Id) and runs the response steps,
// as for any answer. It is no rejection: Exchange.Rejected stays nil and
// no rejection is counted.
var Answered = &Rejection{Status: 200, Reason: "answered", Message: "answered by a policy"}

// Error makes a Rejection usable as an error in logs and tests.
func (r *Rejection) Error() string { return r.Policy + ": " + r.Reason + ": " + r.Message }

// ClientBodyIncomplete is the reason and message of a request whose body
// the client did not send whole, as the gateway and a policy reading the
// body both report it: cut short before its Content-Length, or chunked
// framing or a trailer section that does not parse.
const (
	ClientBodyIncomplete        = "client_body_incomplete"
	ClientBodyIncompleteMessage = "the request body is incomplete or malformed: it ended before its announced length, " +
		"or its chunks or trailer section do not parse"
)

package proxy

import (
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// Reasons of the gateway's own error responses, as sent in X-Flexgate-Error
// and counted in flexgate_errors_total.
const (
	reasonNoRoute            = "no_route"
	reasonMethodNotAllowed   = "method_not_allowed"
	reasonUnreachable        = "upstream_unreachable"
	reasonTimeout            = "upstream_timeout"
	reasonBodyTooLarge       = "body_too_large"
	reasonBadRequest         = "bad_request"
	reasonHeaderTooLarge     = "header_too_large"
	reasonUpstreamProtocol   = "upstream_protocol_error"
	reasonUpstreamReset      = "upstream_reset"
	reasonUpstreamTLS        = "upstream_tls_error"
	reasonUpstreamHeader     = "upstream_header_too_large"
	reasonClientBody         = chain.ClientBodyIncomplete
	reasonTrailerFields      = "too_many_trailer_fields"
	reasonOverloaded         = "overloaded"
	reasonPathParameters     = "path_parameters"
	reasonClientConnLimit    = "client_connection_limit"
	reasonUpstreamBusy       = "upstream_overloaded"
	reasonWebSocketHandshake = "websocket_handshake"
	reasonAmbiguousHeader    = "ambiguous_header"
	reasonHTTPVersion        = "http_version_not_supported"
)

// The gateway's own errors are Rejections, as the policies' are, without a
// policy: shared and immutable, so rendering one allocates nothing.
var (
	errNoRoute                = &chain.Rejection{Status: fasthttp.StatusNotFound, Reason: reasonNoRoute, Message: "no route matches the request path"}
	errMethodNotAllowed       = &chain.Rejection{Status: fasthttp.StatusMethodNotAllowed, Reason: reasonMethodNotAllowed, Message: "the route does not allow this method"}
	errUnreachable            = &chain.Rejection{Status: fasthttp.StatusBadGateway, Reason: reasonUnreachable, Message: "the upstream could not be reached"}
	errTimeout                = &chain.Rejection{Status: fasthttp.StatusGatewayTimeout, Reason: reasonTimeout, Message: "the upstream did not answer in time"}
	errUpstreamProtocol       = &chain.Rejection{Status: fasthttp.StatusBadGateway, Reason: reasonUpstreamProtocol, Message: "the upstream sent an invalid response"}
	errUpstreamReset          = &chain.Rejection{Status: fasthttp.StatusBadGateway, Reason: reasonUpstreamReset, Message: "the upstream closed the connection before a complete answer"}
	errUpstreamTLS            = &chain.Rejection{Status: fasthttp.StatusBadGateway, Reason: reasonUpstreamTLS, Message: "the upstream's TLS certificate or handshake failed verification"}
	errUpstreamHeaderTooLarge = &chain.Rejection{Status: fasthttp.StatusBadGateway, Reason: reasonUpstreamHeader, Message: "the upstream's response headers are larger than limits.maxResponseHeaderSize"}
	errBodyTooLarge           = &chain.Rejection{Status: fasthttp.StatusRequestEntityTooLarge, Reason: reasonBodyTooLarge, Message: "the request body is larger than the route allows"}
	errBadRequest             = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonBadRequest, Message: "the request is malformed"}
	errHeaderTooLarge         = &chain.Rejection{Status: fasthttp.StatusRequestHeaderFieldsTooLarge, Reason: reasonHeaderTooLarge, Message: "the request headers are too large"}
	errClientBody             = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonClientBody, Message: chain.ClientBodyIncompleteMessage}
	errTrailerFieldsRejection = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonTrailerFields, Message: "the request's trailer section has more than " + strconv.Itoa(maxTrailerFields) + " fields"}
	errBadHost                = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonBadRequest, Message: "the request's Host, or the host of its absolute-form target, is not host[:port] as RFC 9110 §7.2 allows: it has userinfo (@), a path, an empty label (..), a byte no host has, or a port that is not digits"}
	errHTTPVersion            = &chain.Rejection{Status: fasthttp.StatusHTTPVersionNotSupported, Reason: reasonHTTPVersion, Message: "the gateway speaks HTTP/1.0 and HTTP/1.1 on this connection"}
	errPathNUL                = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonBadRequest, Message: "the request path has an encoded NUL (%00), which the gateway refuses"}
	errPathParameters         = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonPathParameters, Message: "the request path has ';' path parameters (raw or as %3B), which the gateway refuses"}
	errOverloaded             = &chain.Rejection{Status: fasthttp.StatusServiceUnavailable, Reason: reasonOverloaded, Message: "the gateway is at its connection limit"}
	errUpstreamOverloaded     = &chain.Rejection{Status: fasthttp.StatusServiceUnavailable, Reason: reasonUpstreamBusy, Message: "the upstream is at a threshold of its circuit breaker"}
	// errAmbiguousHeader is the kind of each ruleHeader's rejection, which
	// names its header.
	errAmbiguousHeader = &chain.Rejection{Status: fasthttp.StatusBadRequest, Reason: reasonAmbiguousHeader,
		Message: "the request carries a header that rules read more than once, or in another spelling"}
	errClientConnLimit = &chain.Rejection{Status: fasthttp.StatusServiceUnavailable, Reason: reasonClientConnLimit, Message: "the client address is at its connection limit"}
)

// HeaderError names the header that tells the gateway's own errors from the
// upstream's.
const HeaderError = "X-Flexgate-Error"

// HeaderPolicy names the policy that rejected a request.
const HeaderPolicy = "X-Flexgate-Policy"

// renderError writes the JSON answer of a refusal. It is the one place
// where errors become responses: the gateway's own and the policies'
// rejections alike. Headers already on the response (Retry-After,
// WWW-Authenticate, Allow) are kept. ex may be nil before a request has an
// Exchange (a request fasthttp could not parse).
func renderError(ctx *fasthttp.RequestCtx, rej *chain.Rejection, routeID string, ex *chain.Exchange) {
	status, reason, message, policy, detailKey := rej.Status, rej.Reason, rej.Message, rej.Policy, rej.DetailKey
	resp := &ctx.Response
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	resp.Header.Set(HeaderError, reason)
	if policy != "" {
		resp.Header.Set(HeaderPolicy, policy)
	}
	sp := scratchPool.Get().(*[]byte)
	buf := append((*sp)[:0], `{"error":`...)
	buf = appendJSONString(buf, message)
	buf = append(buf, `,"reason":`...)
	buf = appendJSONString(buf, reason)
	buf = append(buf, `,"status":`...)
	buf = strconv.AppendInt(buf, int64(status), 10)
	buf = append(buf, `,"route":`...)
	buf = appendJSONString(buf, routeID)
	if policy != "" {
		buf = append(buf, `,"policy":`...)
		buf = appendJSONString(buf, policy)
	}
	buf = append(buf, `,"requestId":`...)
	if ex != nil {
		buf = appendJSONBytes(buf, ex.RequestID)
		if detailKey != "" && len(ex.Details) > 0 {
			buf = append(buf, ',')
			buf = appendJSONString(buf, detailKey)
			buf = append(buf, ':')
			buf = append(buf, ex.Details...)
		}
	} else {
		buf = append(buf, `""`...)
	}
	buf = append(buf, '}', '\n')
	resp.SetBody(buf)
	*sp = buf
	scratchPool.Put(sp)
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		dst = appendJSONByte(dst, s[i])
	}
	return append(dst, '"')
}

func appendJSONBytes(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		dst = appendJSONByte(dst, c)
	}
	return append(dst, '"')
}

func appendJSONByte(dst []byte, c byte) []byte {
	switch {
	case c == '"' || c == '\\':
		return append(dst, '\\', c)
	case c < 0x20:
		return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(dst, c)
}

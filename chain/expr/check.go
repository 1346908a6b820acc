package expr

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/ascii"
)

// This file gives a Flex expression's syntax tree its meaning: it resolves
// the bindings (attributes, authentication, vars), checks the types of
// operators and functions where they are known at load time, and folds
// what is constant.

// Phase is when an expression is evaluated: on the request, before the
// upstream is called, or on the response.
type Phase uint8

const (
	// Request: attributes.headers are the request's headers, and
	// attributes.statusCode is not known yet.
	Request Phase = iota
	// Response: attributes.headers are the response's headers.
	Response
)

func (p Phase) String() string {
	if p == Response {
		return "response"
	}
	return "request"
}

type checker struct {
	src   string
	env   *chain.Env
	phase Phase
}

func (c *checker) errAt(at int, format string, args ...any) *Error {
	return &Error{Src: c.src, Offset: at, Msg: fmt.Sprintf(format, args...)}
}

// attributeFields are the members of `attributes`, for error messages.
var attributeFields = []string{"headers", "method", "queryParams", "queryString", "requestPath", "requestUri",
	"localAddress", "remoteAddress", "scheme", "version", "statusCode"}

// leafAttributes are the members of `attributes` that are one value.
var leafAttributes = map[string]struct {
	op op
	t  types
}{
	"method":        {opMethod, tStr},
	"queryString":   {opQueryString, tStr},
	"requestPath":   {opPath, tStr},
	"requestUri":    {opRequestURI, tStr},
	"localAddress":  {opLocalAddr, tStr},
	"remoteAddress": {opRemoteAddr, tStr},
	"scheme":        {opScheme, tStr},
	"version":       {opVersion, tStr},
}

type function struct {
	op   op
	args []types
	// result gives the result's type from the arguments'.
	result func(args []*node) types
	usage  string
}

func textResult(args []*node) types { return tStr | args[0].t&tNull }

// functions are the Flex subset's functions, by the name written.
var functions = map[string]function{
	"lower":    {opLower, []types{tStr | tNull}, textResult, "lower(text)"},
	"upper":    {opUpper, []types{tStr | tNull}, textResult, "upper(text)"},
	"trim":     {opTrim, []types{tStr | tNull}, textResult, "trim(text)"},
	"sizeOf":   {opSizeOf, []types{tArr | tStr | tObj | tNull}, func([]*node) types { return tNum }, "sizeOf(array, text or object)"},
	"contains": {opContains, []types{tArr | tStr | tNull, tAny}, func([]*node) types { return tBool }, "contains(array or text, value), or array contains value"},
	"splitBy": {opSplitBy, []types{tStr | tNull, tStr},
		func(a []*node) types { return tArr | a[0].t&tNull }, "splitBy(text, separator), or text splitBy separator"},
	"uuid": {opUUID, nil, func([]*node) types { return tStr }, "uuid()"},
	"dw::core::Strings::substringAfter": {opSubAfter, []types{tStr | tNull, tStr},
		func([]*node) types { return tStr | tNull }, "dw::core::Strings::substringAfter(text, separator)"},
	"dw::core::Strings::substringAfterLast": {opSubAfterLast, []types{tStr | tNull, tStr},
		func([]*node) types { return tStr | tNull }, "dw::core::Strings::substringAfterLast(text, separator)"},
	"dw::core::Strings::substringBefore": {opSubBefore, []types{tStr | tNull, tStr},
		func([]*node) types { return tStr | tNull }, "dw::core::Strings::substringBefore(text, separator)"},
	"dw::core::Strings::substringBeforeLast": {opSubBeforeLast, []types{tStr | tNull, tStr},
		func([]*node) types { return tStr | tNull }, "dw::core::Strings::substringBeforeLast(text, separator)"},
	"dw::core::Binaries::fromBase64": {opFromBase64, []types{tStr},
		func([]*node) types { return tStr | tNull }, "dw::core::Binaries::fromBase64(text)"},
}

func functionNames() string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (c *checker) node(a *ast) (*node, error) {
	switch a.kind {
	case aLit:
		return constNode(a.at, a.lit), nil
	case aArray:
		n := &node{op: opArray, at: a.at, t: tArr}
		for _, k := range a.kids {
			kn, err := c.node(k)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kn)
		}
		return fold(n), nil
	case aIdent, aField, aIndex:
		return c.selection(a)
	case aCall:
		return c.call(a)
	case aUnary:
		x, err := c.node(a.kids[0])
		if err != nil {
			return nil, err
		}
		if x.t&tBool == 0 {
			return nil, c.errAt(x.at, "%s needs true or false, but this is %s", a.op, x.t)
		}
		return fold(&node{op: opNot, at: a.at, t: tBool, kids: []*node{x}}), nil
	case aIf:
		var kids []*node
		for _, k := range a.kids {
			kn, err := c.node(k)
			if err != nil {
				return nil, err
			}
			kids = append(kids, kn)
		}
		if kids[0].t&tBool == 0 {
			return nil, c.errAt(kids[0].at, "the condition of if needs true or false, but this is %s", kids[0].t)
		}
		return fold(&node{op: opIf, at: a.at, t: kids[1].t | kids[2].t, kids: kids}), nil
	case aBinary:
		return c.binary(a)
	}
	return nil, c.errAt(a.at, "unexpected expression")
}

// fold evaluates a node whose value depends only on constants.
func fold(n *node) *node {
	if !n.pure() || n.op == opConst {
		return n
	}
	for _, k := range n.kids {
		if k.op != opConst {
			return n
		}
	}
	// A run of its own: the constant keeps its space.
	v := n.eval(&run{})
	c := constNode(n.at, v)
	return c
}

func (c *checker) binary(a *ast) (*node, error) {
	l, err := c.node(a.kids[0])
	if err != nil {
		return nil, err
	}
	r, err := c.node(a.kids[1])
	if err != nil {
		return nil, err
	}
	n := &node{at: a.at, kids: []*node{l, r}, t: tBool}
	switch a.op {
	case "default":
		n.op, n.t = opDefault, l.t&^tNull|r.t
	case "and", "or":
		n.op = opAnd
		if a.op == "or" {
			n.op = opOr
		}
		for _, x := range n.kids {
			if x.t&tBool == 0 {
				return nil, c.errAt(x.at, "%s needs true or false on both sides, but this is %s", a.op, x.t)
			}
		}
	case "==", "!=":
		n.op = opEq
		if a.op == "!=" {
			n.op = opNe
		}
		if l.t&r.t == 0 {
			return nil, c.errAt(a.at, "%s compares %s with %s, which are never equal (there is no conversion between types)%s",
				a.op, l.t, r.t, compareHint(l, r))
		}
	case ">=", "<=", ">", "<":
		n.op = map[string]op{">=": opGe, "<=": opLe, ">": opGt, "<": opLt}[a.op]
		if l.t&r.t&(tNum|tStr) == 0 {
			return nil, c.errAt(a.at, "%s compares two numbers or two texts, not %s with %s%s", a.op, l.t, r.t, compareHint(l, r))
		}
	case "++":
		n.op = opJoin
		onlyArr := func(x *node) bool { return x.t&^(tArr|tNull) == 0 }
		switch {
		case l.t&^tNull == tObj || r.t&^tNull == tObj:
			return nil, c.errAt(a.at, "++ joins two texts or two arrays, not objects")
		case onlyArr(l) && onlyArr(r):
			n.t = tArr
		case onlyArr(l) && r.t&tArr == 0, onlyArr(r) && l.t&tArr == 0:
			return nil, c.errAt(a.at, "++ joins two texts or two arrays, not %s with %s", l.t, r.t)
		case l.t&tArr == 0 && r.t&tArr == 0:
			n.t = tStr
		default:
			n.t = tStr | tArr
		}
	default:
		return nil, c.errAt(a.at, "unknown operator %s", a.op)
	}
	return fold(n), nil
}

// compareHint suggests the literal that was meant, when a number is
// compared with text written as a number ("200").
func compareHint(l, r *node) string {
	for _, pair := range [][2]*node{{l, r}, {r, l}} {
		x, lit := pair[0], pair[1]
		if x.t&tNum != 0 && lit.op == opConst && lit.c.k == kStr {
			if _, err := strconv.ParseFloat(string(lit.c.s), 64); err == nil {
				return fmt.Sprintf("; write the number without quotes: %s", lit.c.s)
			}
		}
	}
	return ""
}

func (c *checker) call(a *ast) (*node, error) {
	name := strings.TrimPrefix(a.name, "dw::Core::")
	f, ok := functions[name]
	if !ok {
		for full := range functions {
			if strings.HasSuffix(full, "::"+name) {
				return nil, c.errAt(a.at, "%s is not imported in a Flex expression: write its full name, %s", name, full)
			}
		}
		return nil, c.errAt(a.at, "unknown function %s; the functions are: %s", a.name, functionNames())
	}
	if len(a.kids) != len(f.args) {
		return nil, c.errAt(a.at, "%s takes %d argument(s), not %d: %s", name, len(f.args), len(a.kids), f.usage)
	}
	n := &node{op: f.op, at: a.at}
	for i, k := range a.kids {
		kn, err := c.node(k)
		if err != nil {
			var xe *Error
			if a.op == "infix" && i == 1 && k.kind == aBinary && k.op != "++" && errors.As(err, &xe) {
				// x contains 'a' and y reads as x contains ('a' and y).
				xe.Msg += fmt.Sprintf("; note that %s written between its arguments binds more loosely than %s: "+
					"put it in parentheses, e.g. (x %s y) %s z", name, k.op, name, k.op)
			}
			return nil, err
		}
		if kn.t&f.args[i] == 0 {
			return nil, c.errAt(kn.at, "argument %d of %s is %s; it takes %s: %s", i+1, name, kn.t, f.args[i]&^tNull, f.usage)
		}
		n.kids = append(n.kids, kn)
	}
	if f.op == opContains && n.kids[0].t&^tNull == tStr && n.kids[1].t&tStr == 0 {
		return nil, c.errAt(n.kids[1].at, "contains on text looks for text, not %s", n.kids[1].t)
	}
	n.t = f.result(n.kids)
	return fold(n), nil
}

// selector is one step of a selection: .name, .'name' or [key].
type selector struct {
	at  int
	key *ast
	// name is the key when it is known at load time: a field or a
	// literal text in brackets.
	name  string
	named bool
}

// selection compiles a name and the selectors after it.
func (c *checker) selection(a *ast) (*node, error) {
	var sels []selector
	root := a
	for root.kind == aField || root.kind == aIndex {
		s := selector{at: root.at}
		if root.kind == aField {
			s.name, s.named = root.name, true
		} else {
			s.key = root.kids[1]
			if s.key.kind == aLit && s.key.lit.k == kStr {
				s.name, s.named = string(s.key.lit.s), true
			}
		}
		sels = append(sels, s)
		root = root.kids[0]
	}
	for i, j := 0, len(sels)-1; i < j; i, j = i+1, j-1 {
		sels[i], sels[j] = sels[j], sels[i]
	}
	if root.kind != aIdent {
		base, err := c.node(root)
		if err != nil {
			return nil, err
		}
		return c.selectAll(base, sels)
	}
	switch root.name {
	case "attributes":
		return c.attributes(root, sels)
	case "authentication", "vars":
		return c.provided(root, sels)
	case "payload":
		return nil, c.errAt(root.at, "payload (the message body) is not available to expressions in flexgate")
	}
	if _, ok := functions[strings.TrimPrefix(root.name, "dw::Core::")]; ok {
		return nil, c.errAt(root.at, "%s is a function: call it, %s", root.name, functions[strings.TrimPrefix(root.name, "dw::Core::")].usage)
	}
	return nil, c.errAt(root.at, "unknown name %s; an expression reads attributes (the request), authentication or vars, literals and functions", root.name)
}

func (c *checker) attributes(root *ast, sels []selector) (*node, error) {
	fields := strings.Join(attributeFields, ", ")
	if len(sels) == 0 {
		return nil, c.errAt(root.at, "attributes holds the request's parts: select one, e.g. attributes.method; they are: %s", fields)
	}
	s := sels[0]
	if !s.named {
		return nil, c.errAt(s.at, "select a member of attributes by name, e.g. attributes.method; they are: %s", fields)
	}
	rest := sels[1:]
	at := root.at
	switch s.name {
	case "headers", "queryParams":
		obj, one := opHeaders, opHeader
		switch {
		case s.name == "queryParams":
			obj, one = opQueryParams, opQuery
		case c.phase == Response:
			obj, one = opRespHeaders, opRespHeader
		}
		if len(rest) == 0 || !rest[0].named {
			n := &node{op: obj, at: at, t: tObj}
			return c.selectAll(n, rest)
		}
		name := rest[0].name
		if one != opQuery && !ascii.IsToken(name) {
			return nil, c.errAt(rest[0].at, "%q is not a header name", name)
		}
		n := &node{op: one, at: at, t: tStr | tNull, name: []byte(name)}
		return c.selectAll(n, rest[1:])
	case "statusCode":
		if c.phase != Response {
			return nil, c.errAt(s.at, "attributes.statusCode is the upstream's status, known only on the response; this value is evaluated on the request")
		}
		return c.selectAll(&node{op: opStatus, at: at, t: tNum}, rest)
	case "clientAddress":
		// Not in Flex's documentation, but seen in working configs:
		// the client's address, whose .ip is remoteAddress.
		if len(rest) == 0 || !rest[0].named || rest[0].name != "ip" {
			return nil, c.errAt(s.at, "use attributes.remoteAddress for the client's address")
		}
		return c.selectAll(&node{op: opRemoteAddr, at: at, t: tStr}, rest[1:])
	}
	leaf, ok := leafAttributes[s.name]
	if !ok {
		return nil, c.errAt(s.at, "attributes has no member %q; its members are: %s", s.name, fields)
	}
	return c.selectAll(&node{op: leaf.op, at: at, t: leaf.t}, rest)
}

// provided compiles authentication.* and vars.*: the values policies
// provide, found in the chain's registry under these names (aliases, most
// of them, of the names policies register).
func (c *checker) provided(root *ast, sels []selector) (*node, error) {
	var keys []string
	for _, s := range sels {
		if !s.named || !isValueWord(s.name) {
			break
		}
		keys = append(keys, s.name)
	}
	var info chain.ValueInfo
	found, used := false, 0
	for i := len(keys); i > 0 && !found; i-- {
		info, found = chain.LookupValue(root.name + "." + strings.Join(keys[:i], "."))
		used = i
	}
	if !found {
		at, what := root.at, root.name
		if len(sels) > 0 {
			at = sels[0].at
		}
		if len(keys) > 0 {
			what += "." + keys[0]
		}
		return nil, c.errAt(at, "%s is not provided by any policy; known here: %s", what, providedNames(root.name))
	}
	name := root.name + "." + strings.Join(keys[:used], ".")
	if err := checkProvided("", name, len(name), info, c.env); err != nil {
		return nil, c.errAt(root.at, "%v", err)
	}
	rest := sels[used:]
	if !info.Object {
		return c.selectAll(&node{op: opValue, at: root.at, t: tStr | tNull, v: info.Value}, rest)
	}
	n := &node{op: opValue, at: root.at, t: tObj | tNull, v: info.Value}
	// Members known at load time are read straight from the JSON.
	var path []string
	for len(rest) > 0 {
		s := rest[0]
		switch {
		case s.named && !strings.HasPrefix(s.name, "["):
			path = append(path, s.name)
		case s.key != nil && s.key.kind == aLit && s.key.lit.k == kNum && s.key.lit.n >= 0 &&
			s.key.lit.n == float64(int(s.key.lit.n)) && s.key.lit.n < 1<<31:
			path = append(path, "["+strconv.Itoa(int(s.key.lit.n))+"]")
		default:
			return c.selectAll(c.member(n, path), rest)
		}
		rest = rest[1:]
	}
	return c.member(n, path), nil
}

func (c *checker) member(obj *node, path []string) *node {
	if len(path) == 0 {
		return obj
	}
	return &node{op: opMember, at: obj.at, t: tAny, v: obj.v, path: path}
}

func isValueWord(w string) bool {
	if w == "" || !isLetter(w[0]) {
		return false
	}
	for i := 1; i < len(w); i++ {
		if !isLetter(w[i]) && (w[i] < '0' || w[i] > '9') && w[i] != '_' {
			return false
		}
	}
	return true
}

// providedNames lists the registered names under root, for errors.
func providedNames(root string) string {
	var names []string
	for _, v := range chain.Values() {
		for _, n := range append([]string{v.Name}, v.Aliases...) {
			if strings.HasPrefix(n, root+".") {
				if v.Object {
					n += ".NAME"
				}
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// selectAll applies selectors that are decided on the request: a member
// of an object, an element of an array, a character of a text.
func (c *checker) selectAll(base *node, sels []selector) (*node, error) {
	for _, s := range sels {
		var key *node
		if s.key == nil {
			key = constNode(s.at, val{k: kStr, s: []byte(s.name)})
		} else {
			var err error
			if key, err = c.node(s.key); err != nil {
				return nil, err
			}
		}
		if base.t&(tObj|tArr|tStr) == 0 {
			return nil, c.errAt(s.at, "cannot select from %s", base.t)
		}
		byName, byIndex := key.t&tStr != 0, key.t&tNum != 0
		switch {
		case !byName && !byIndex:
			return nil, c.errAt(key.at, "a selector takes a name or an index, not %s", key.t)
		case byName && !byIndex && base.t&tObj == 0:
			return nil, c.errAt(s.at, "%s has no members by name; select an element or character by index, e.g. [0]", base.t)
		case byIndex && !byName && base.t&(tArr|tStr) == 0:
			return nil, c.errAt(s.at, "%s is selected by name, not by index", base.t)
		}
		t := tAny
		switch {
		case base.t&^tNull == tStr, base.op == opHeaders, base.op == opRespHeaders, base.op == opQueryParams:
			t = tStr | tNull
		}
		base = fold(&node{op: opSelect, at: s.at, t: t, kids: []*node{base, key}})
	}
	return base, nil
}

package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads the DataWeave subset written between `#[` and `]` into a
// syntax tree; check.go gives it meaning.

// maxDepth bounds how deeply an expression may nest (parentheses, arrays,
// calls, operators, selectors), so that a hostile or generated value is an
// error rather than a deep recursion when it is parsed, checked or
// evaluated.
const maxDepth = 48

type tokKind uint8

const (
	tkEOF tokKind = iota
	tkIdent
	tkNum
	tkStr
	tkLBrack
	tkRBrack
	tkLParen
	tkRParen
	tkComma
	tkDot
	tkDColon
	tkEq
	tkNe
	tkGe
	tkLe
	tkGt
	tkLt
	tkConcat
	tkBang
	tkMinus
	tkOther
)

type token struct {
	kind tokKind
	at   int    // byte offset in the value as written
	text string // identifier, or the literal as written
	str  string // a string literal's decoded text
	num  float64
}

func (t token) String() string {
	switch t.kind {
	case tkEOF:
		return "the end of the expression"
	case tkIdent:
		return "`" + t.text + "`"
	case tkNum:
		return "the number " + t.text
	case tkStr:
		return "the text " + t.text
	}
	return "`" + t.text + "`"
}

type astKind uint8

const (
	aLit    astKind = iota // lit
	aArray                 // kids: elements
	aIdent                 // name (may be qualified: dw::core::Strings::x)
	aField                 // kids[0].name, written .name or .'name'
	aIndex                 // kids[0][kids[1]]
	aCall                  // name(kids...)
	aUnary                 // op kids[0]: not, !, -
	aBinary                // kids[0] op kids[1]
	aIf                    // if (kids[0]) kids[1] else kids[2]
)

type ast struct {
	kind  astKind
	at    int
	op    string
	name  string
	lit   val
	kids  []*ast
	depth int
}

func (p *parser) mk(kind astKind, at int, kids ...*ast) (*ast, error) {
	a := &ast{kind: kind, at: at, kids: kids, depth: 1}
	for _, k := range kids {
		a.depth = max(a.depth, k.depth+1)
	}
	if a.depth > maxDepth {
		return nil, p.errAt(at, "the expression nests more than %d levels deep; split it or simplify it", maxDepth)
	}
	return a, nil
}

type parser struct {
	src   string // the whole value as written
	end   int    // offset of the closing `]`
	pos   int
	tok   token
	depth int
}

func (p *parser) errAt(at int, format string, args ...any) *Error {
	return &Error{Src: p.src, Offset: at, Msg: fmt.Sprintf(format, args...)}
}

// parseDW parses src[start:end], the text between `#[` and its `]`.
func parseDW(src string, start, end int) (*ast, error) {
	p := &parser{src: src, end: end, pos: start}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tkEOF {
		return nil, p.errAt(start, "the expression is empty: write one between #[ and ], e.g. #[attributes.method]")
	}
	a, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tkEOF {
		return nil, p.unexpected("an operator or the end of the expression")
	}
	return a, nil
}

func (p *parser) unexpected(want string) error {
	t := p.tok
	switch {
	case t.kind == tkRBrack:
		return p.errAt(t.at, "expected %s, found `]`; an expression is one #[...] that makes up the whole value", want)
	case t.kind == tkIdent && t.text == "null":
		return p.errAt(t.at, "there is no null literal in Flex expressions; to test for a missing value use `default`, e.g. attributes.headers['x'] default ''")
	case t.kind == tkMinus:
		return p.errAt(t.at, "arithmetic is not supported; to select a name with `-` in it, quote it: attributes.headers.'x-api-key' or attributes.headers['x-api-key']")
	case t.kind == tkOther && t.text == "{":
		return p.errAt(t.at, "object literals are not supported in Flex expressions")
	case t.kind == tkOther && (t.text == "+" || t.text == "*"):
		return p.errAt(t.at, "arithmetic is not supported; `++` joins text")
	case t.kind == tkOther && t.text == "/":
		return p.errAt(t.at, "arithmetic and regular expressions are not supported")
	case t.kind == tkIdent && unsupported[t.text]:
		return p.errAt(t.at, "%s is not supported in flexgate's Flex expressions (see the subset in chain/expr/README.md)", t.text)
	case t.kind == tkOther && t.text == "$":
		return p.errAt(t.at, "`$` is not part of Flex expressions ($-expressions such as $request.method are written without #[...])")
	}
	return p.errAt(t.at, "expected %s, found %s", want, t)
}

// next reads the next token into p.tok.
func (p *parser) next() error {
	s := p.src
	for p.pos < p.end && (s[p.pos] == ' ' || s[p.pos] == '\t' || s[p.pos] == '\n' || s[p.pos] == '\r') {
		p.pos++
	}
	at := p.pos
	if at >= p.end {
		p.tok = token{kind: tkEOF, at: p.end}
		return nil
	}
	c := s[at]
	two := ""
	if at+1 < p.end {
		two = s[at : at+2]
	}
	simple := func(k tokKind, n int) error {
		p.tok = token{kind: k, at: at, text: s[at : at+n]}
		p.pos = at + n
		return nil
	}
	switch {
	case two == "==":
		return simple(tkEq, 2)
	case two == "!=":
		return simple(tkNe, 2)
	case two == ">=":
		return simple(tkGe, 2)
	case two == "<=":
		return simple(tkLe, 2)
	case two == "++":
		return simple(tkConcat, 2)
	case two == "::":
		return simple(tkDColon, 2)
	case two == "~=":
		return p.errAt(at, "`~=` is not supported; compare with ==")
	case c == '>':
		return simple(tkGt, 1)
	case c == '<':
		return simple(tkLt, 1)
	case c == '!':
		return simple(tkBang, 1)
	case c == '-':
		return simple(tkMinus, 1)
	case c == '[':
		return simple(tkLBrack, 1)
	case c == ']':
		return simple(tkRBrack, 1)
	case c == '(':
		return simple(tkLParen, 1)
	case c == ')':
		return simple(tkRParen, 1)
	case c == ',':
		return simple(tkComma, 1)
	case c == '.':
		return simple(tkDot, 1)
	case c == '\'' || c == '"':
		return p.lexString(at, c)
	case c >= '0' && c <= '9':
		return p.lexNumber(at)
	case isLetter(c) || c == '_':
		j := at + 1
		for j < p.end && (isLetter(s[j]) || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
			j++
		}
		return simple(tkIdent, j-at)
	}
	_, n := utf8.DecodeRuneInString(s[at:p.end])
	return simple(tkOther, n)
}

func (p *parser) lexNumber(at int) error {
	s := p.src
	j := at
	digits := func() {
		for j < p.end && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	}
	digits()
	if j+1 < p.end && s[j] == '.' && s[j+1] >= '0' && s[j+1] <= '9' {
		j++
		digits()
	}
	if j < p.end && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < p.end && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < p.end && s[k] >= '0' && s[k] <= '9' {
			j = k
			digits()
		}
	}
	if j < p.end && (isLetter(s[j]) || s[j] == '_') {
		return p.errAt(j, "a number runs into %q; put a space or an operator after it", s[j])
	}
	text := s[at:j]
	n, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return p.errAt(at, "%s is not a number Flex expressions can hold", text)
	}
	p.tok = token{kind: tkNum, at: at, text: text, num: n}
	p.pos = j
	return nil
}

// lexString reads a string literal in single or double quotes. A
// backslash escapes the quote, a backslash, and n, r, t, b, f and
// uXXXX as in DataWeave; string interpolation, $( ), is not supported.
func (p *parser) lexString(at int, quote byte) error {
	s := p.src
	var b strings.Builder
	j := at + 1
	for {
		if j >= p.end {
			return p.errAt(at, "this text is not closed: end it with %c", quote)
		}
		c := s[j]
		switch {
		case c == quote:
			p.tok = token{kind: tkStr, at: at, text: s[at : j+1], str: b.String()}
			p.pos = j + 1
			return nil
		case c == '$' && j+1 < p.end && s[j+1] == '(':
			return p.errAt(j, "string interpolation $( ) is not supported; join text with ++, e.g. 'Bearer ' ++ attributes.headers['x']")
		case c == '\\':
			if j+1 >= p.end {
				return p.errAt(j, "a backslash ends the text; write \\\\ for a backslash")
			}
			e := s[j+1]
			switch e {
			case '\\', '\'', '"', '/', '$', '`':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if j+6 > p.end {
					return p.errAt(j, "\\u needs four hex digits")
				}
				r, err := strconv.ParseUint(s[j+2:j+6], 16, 32)
				if err != nil {
					return p.errAt(j, "\\u needs four hex digits, not %q", s[j+2:j+6])
				}
				b.WriteRune(rune(r))
				j += 4
			default:
				return p.errAt(j, "\\%c is not an escape; write \\\\ for a backslash", e)
			}
			j += 2
		default:
			b.WriteByte(c)
			j++
		}
	}
}

func (p *parser) expect(k tokKind, what string) (token, error) {
	t := p.tok
	if t.kind != k {
		return t, p.unexpected(what)
	}
	return t, p.next()
}

func (p *parser) isWord(w string) bool { return p.tok.kind == tkIdent && p.tok.text == w }

// The grammar, loosest first, follows DataWeave's precedence:
//
//	expr    = "if" "(" expr ")" expr "else" expr | level9
//	level9  = or { ("default" | "contains" | "splitBy") or }
//	or      = and { "or" and }
//	and     = eq { "and" eq }
//	eq      = rel { ("==" | "!=") rel }
//	rel     = concat { (">=" | "<=" | ">" | "<") concat }
//	concat  = unary { "++" unary }
//	unary   = "not" or | "!" unary | "-" unary | postfix
//	postfix = primary { "." (name | string) | "[" expr "]" }
//	primary = literal | "[" [expr {"," expr}] "]" | "(" expr ")" | name ["(" args ")"]
//
// As in DataWeave, `not` negates everything up to the next `default`,
// infix function or the end: `not a or b` is `not (a or b)`.
func (p *parser) expr() (*ast, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errAt(p.tok.at, "the expression nests more than %d levels deep; split it or simplify it", maxDepth)
	}
	if p.isWord("if") {
		return p.ifExpr()
	}
	return p.level9()
}

func (p *parser) ifExpr() (*ast, error) {
	at := p.tok.at
	if err := p.next(); err != nil {
		return nil, err
	}
	if _, err := p.expect(tkLParen, "`(` after if: if (condition) value else other"); err != nil {
		return nil, err
	}
	cond, err := p.expr()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tkRParen, "`)` to close the condition of if"); err != nil {
		return nil, err
	}
	then, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !p.isWord("else") {
		return nil, p.unexpected("`else`: if needs an else branch")
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	els, err := p.expr()
	if err != nil {
		return nil, err
	}
	return p.mk(aIf, at, cond, then, els)
}

// unsupported are DataWeave's words outside the subset, named in errors.
var unsupported = map[string]bool{"as": true, "is": true, "match": true, "map": true, "filter": true,
	"reduce": true, "mapObject": true, "groupBy": true, "orderBy": true, "distinctBy": true, "then": true,
	"do": true, "var": true, "fun": true, "import": true, "unless": true, "using": true, "matches": true,
	"startsWith": true, "endsWith": true, "replace": true, "joinBy": true, "to": true, "update": true}

// infix are the functions that may be written between their arguments.
var infix = map[string]bool{"contains": true, "splitBy": true}

func (p *parser) level9() (*ast, error) {
	left, err := p.or()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tkIdent && (p.tok.text == "default" || infix[p.tok.text]) {
		op, at := p.tok.text, p.tok.at
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := p.or()
		if err != nil {
			return nil, err
		}
		if op == "default" {
			left, err = p.mk(aBinary, at, left, right)
			if left != nil {
				left.op = op
			}
		} else {
			left, err = p.mk(aCall, at, left, right)
			if left != nil {
				left.name, left.op = op, "infix"
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return left, nil
}

func (p *parser) binary(sub func() (*ast, error), match func(token) bool) (*ast, error) {
	left, err := sub()
	if err != nil {
		return nil, err
	}
	for match(p.tok) {
		op, at := p.tok.text, p.tok.at
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := sub()
		if err != nil {
			return nil, err
		}
		if left, err = p.mk(aBinary, at, left, right); err != nil {
			return nil, err
		}
		left.op = op
	}
	return left, nil
}

func (p *parser) or() (*ast, error) {
	return p.binary(p.and, func(t token) bool { return t.kind == tkIdent && t.text == "or" })
}

func (p *parser) and() (*ast, error) {
	return p.binary(p.eq, func(t token) bool { return t.kind == tkIdent && t.text == "and" })
}

func (p *parser) eq() (*ast, error) {
	return p.binary(p.rel, func(t token) bool { return t.kind == tkEq || t.kind == tkNe })
}

func (p *parser) rel() (*ast, error) {
	return p.binary(p.concat, func(t token) bool {
		return t.kind == tkGe || t.kind == tkLe || t.kind == tkGt || t.kind == tkLt
	})
}

func (p *parser) concat() (*ast, error) {
	return p.binary(p.unary, func(t token) bool { return t.kind == tkConcat })
}

func (p *parser) unary() (*ast, error) {
	t := p.tok
	var operand func() (*ast, error)
	switch {
	case t.kind == tkIdent && t.text == "not":
		operand = p.or
	case t.kind == tkBang:
		operand = p.unary
	case t.kind == tkMinus:
		operand = p.unary
	default:
		return p.postfix()
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errAt(t.at, "the expression nests more than %d levels deep; split it or simplify it", maxDepth)
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	x, err := operand()
	if err != nil {
		return nil, err
	}
	if t.kind == tkMinus {
		if x.kind != aLit || x.lit.k != kNum {
			return nil, p.errAt(t.at, "arithmetic is not supported: `-` may only make a number negative, as in -1")
		}
		x.lit.n, x.at = -x.lit.n, t.at
		return x, nil
	}
	u, err := p.mk(aUnary, t.at, x)
	if err != nil {
		return nil, err
	}
	u.op = t.text
	return u, nil
}

func (p *parser) postfix() (*ast, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		switch p.tok.kind {
		case tkDot:
			dot := p.tok.at
			if err := p.next(); err != nil {
				return nil, err
			}
			t := p.tok
			if t.kind != tkIdent && t.kind != tkStr {
				if t.kind == tkDot || t.kind == tkOther && (t.text == "*" || t.text == "@" || t.text == "^" || t.text == "#" || t.text == "&") {
					return nil, p.errAt(dot, "only the selectors .name, .'name', [key] and [index] are supported")
				}
				return nil, p.unexpected("a name after `.`")
			}
			f, err := p.mk(aField, t.at, x)
			if err != nil {
				return nil, err
			}
			f.name = t.text
			if t.kind == tkStr {
				f.name = t.str
			}
			x = f
			if err := p.next(); err != nil {
				return nil, err
			}
		case tkLBrack:
			at := p.tok.at
			if err := p.next(); err != nil {
				return nil, err
			}
			if p.tok.kind == tkOther && (p.tok.text == "?" || p.tok.text == "@" || p.tok.text == "*" || p.tok.text == "^") {
				return nil, p.errAt(p.tok.at, "only the selectors .name, .'name', [key] and [index] are supported")
			}
			key, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tkRBrack, "`]` to close the selector"); err != nil {
				return nil, err
			}
			if x, err = p.mk(aIndex, at, x, key); err != nil {
				return nil, err
			}
		default:
			return x, nil
		}
	}
}

func (p *parser) primary() (*ast, error) {
	t := p.tok
	switch t.kind {
	case tkNum:
		if err := p.next(); err != nil {
			return nil, err
		}
		return &ast{kind: aLit, at: t.at, lit: val{k: kNum, n: t.num}, depth: 1}, nil
	case tkStr:
		if err := p.next(); err != nil {
			return nil, err
		}
		return &ast{kind: aLit, at: t.at, lit: val{k: kStr, s: []byte(t.str)}, depth: 1}, nil
	case tkLParen:
		if err := p.next(); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tkRParen, "`)`"); err != nil {
			return nil, err
		}
		return x, nil
	case tkLBrack:
		return p.array()
	case tkIdent:
		switch t.text {
		case "true", "false":
			if err := p.next(); err != nil {
				return nil, err
			}
			return &ast{kind: aLit, at: t.at, lit: val{k: kBool, b: t.text == "true"}, depth: 1}, nil
		case "if":
			return p.expr()
		case "null", "and", "or", "else", "default", "not":
			return nil, p.unexpected("a value")
		}
		return p.name()
	}
	return nil, p.unexpected("a value")
}

func (p *parser) array() (*ast, error) {
	at := p.tok.at
	if err := p.next(); err != nil {
		return nil, err
	}
	var elems []*ast
	for p.tok.kind != tkRBrack {
		if len(elems) > 0 {
			if _, err := p.expect(tkComma, "`,` or `]` in the array"); err != nil {
				return nil, err
			}
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		elems = append(elems, e)
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	return p.mk(aArray, at, elems...)
}

// name reads a name, qualified with `::` (dw::core::Strings::substringAfter),
// and the arguments when it is called.
func (p *parser) name() (*ast, error) {
	at := p.tok.at
	name := p.tok.text
	if err := p.next(); err != nil {
		return nil, err
	}
	for p.tok.kind == tkDColon {
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.tok.kind != tkIdent {
			return nil, p.unexpected("a name after `::`")
		}
		name += "::" + p.tok.text
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	if p.tok.kind != tkLParen {
		return &ast{kind: aIdent, at: at, name: name, depth: 1}, nil
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	var args []*ast
	for p.tok.kind != tkRParen {
		if len(args) > 0 {
			if _, err := p.expect(tkComma, "`,` or `)` after an argument"); err != nil {
				return nil, err
			}
		}
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	call, err := p.mk(aCall, at, args...)
	if err != nil {
		return nil, err
	}
	call.name = name
	return call, nil
}

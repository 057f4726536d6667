package acl

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SyntaxError is a policy document that breaks the grammar or a rule, at
// a line and column (both from 1, columns in bytes).
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("policy line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokIdent
	tokString
	tokLBrace
	tokRBrace
	tokLBracket
	tokRBracket
	tokEquals
	tokComma
)

func (k tokenKind) String() string {
	return [...]string{"end of document", "name", "string", "'{'", "'}'", "'['", "']'", "'='", "','"}[k]
}

type token struct {
	kind      tokenKind
	text      string // identifier, or the string's value
	line, col int
}

// lexer splits a document into tokens. It never looks back and reads each
// byte once, so its cost is linear in the document.
type lexer struct {
	src       string
	pos       int
	line, col int
}

func (l *lexer) errorf(line, col int, format string, args ...any) error {
	return &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// advance moves past n bytes that hold no newline.
func (l *lexer) advance(n int) {
	l.pos += n
	l.col += n
}

// skip moves past white space and comments.
func (l *lexer) skip() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.pos++
			l.line++
			l.col = 1
		case c == ' ' || c == '\t' || c == '\r':
			l.advance(1)
		case c == '#' || strings.HasPrefix(l.src[l.pos:], "//"):
			end := strings.IndexByte(l.src[l.pos:], '\n')
			if end < 0 {
				end = len(l.src) - l.pos
			}
			l.advance(end)
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			line, col := l.line, l.col
			end := strings.Index(l.src[l.pos+2:], "*/")
			if end < 0 {
				return l.errorf(line, col, "comment is not closed with */")
			}
			body := l.src[l.pos : l.pos+2+end+2]
			if nl := strings.Count(body, "\n"); nl > 0 {
				l.line += nl
				l.col = len(body) - strings.LastIndexByte(body, '\n')
				l.pos += len(body)
			} else {
				l.advance(len(body))
			}
		default:
			return nil
		}
	}
	return nil
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }

// next returns the next token.
func (l *lexer) next() (token, error) {
	if err := l.skip(); err != nil {
		return token{}, err
	}
	t := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		t.kind = tokEOF
		return t, nil
	}
	c := l.src[l.pos]
	if k, ok := punct[c]; ok {
		t.kind = k
		l.advance(1)
		return t, nil
	}
	switch {
	case isIdentStart(c):
		end := l.pos + 1
		for end < len(l.src) && isIdentByte(l.src[end]) {
			end++
		}
		t.kind, t.text = tokIdent, l.src[l.pos:end]
		l.advance(end - l.pos)
		return t, nil
	case c == '"':
		s, err := l.str()
		t.kind, t.text = tokString, s
		return t, err
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return t, l.errorf(t.line, t.col, "unexpected character %q", r)
}

var punct = map[byte]tokenKind{
	'{': tokLBrace, '}': tokRBrace, '[': tokLBracket, ']': tokRBracket, '=': tokEquals, ',': tokComma,
}

// escapes are the escapes a string may hold, by the byte after '\\'.
var escapes = map[byte]byte{'"': '"', '\\': '\\', 'n': '\n', 't': '\t'}

// str reads a double-quoted string on one line.
func (l *lexer) str() (string, error) {
	line, col := l.line, l.col
	l.advance(1)
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch c {
		case '"':
			l.advance(1)
			return b.String(), nil
		case '\n':
			return "", l.errorf(line, col, "string is not closed on its line")
		case '\\':
			if l.pos+1 >= len(l.src) {
				return "", l.errorf(l.line, l.col, "string ends in a lone backslash")
			}
			esc, ok := escapes[l.src[l.pos+1]]
			if !ok {
				return "", l.errorf(l.line, l.col, "unknown escape \\%c (known: \\\" \\\\ \\n \\t)", l.src[l.pos+1])
			}
			b.WriteByte(esc)
			l.advance(2)
		default:
			b.WriteByte(c)
			l.advance(1)
		}
	}
	return "", l.errorf(line, col, "string is not closed")
}

// parser reads a policy from the lexer's tokens with one token of
// lookahead.
type parser struct {
	lex lexer
	tok token
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	p.tok = t
	return err
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &SyntaxError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expect(k tokenKind, context string) (token, error) {
	t := p.tok
	if t.kind != k {
		return t, p.errorf(t, "expected %s %s, found %s", k, context, describe(t))
	}
	return t, p.advance()
}

func describe(t token) string {
	switch t.kind {
	case tokIdent:
		return fmt.Sprintf("%q", t.text)
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	}
	return t.kind.String()
}

// Parse reads a policy document. Errors are *SyntaxError and name the
// first problem's line and column. A document may be empty (it grants
// nothing).
func Parse(src string) (*Policy, error) {
	if len(src) > MaxPolicyBytes {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("document is %d bytes; at most %d are allowed", len(src), MaxPolicyBytes)}
	}
	if !utf8.ValidString(src) {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: "document is not valid UTF-8"}
	}
	p := &parser{lex: lexer{src: src, line: 1, col: 1}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	pol := &Policy{}
	seen := map[string]bool{}
	for p.tok.kind != tokEOF {
		kw, err := p.expect(tokIdent, "at the start of a block (namespace, node or operator)")
		if err != nil {
			return nil, err
		}
		switch kw.text {
		case "namespace":
			if err := p.namespaceBlock(kw, pol); err != nil {
				return nil, err
			}
		case "node", "operator":
			if seen[kw.text] {
				return nil, p.errorf(kw, "a second %s block (one is allowed)", kw.text)
			}
			seen[kw.text] = true
			l, err := p.levelBlock(kw)
			if err != nil {
				return nil, err
			}
			if kw.text == "node" {
				pol.Node = l
			} else {
				pol.Operator = l
			}
		default:
			return nil, p.errorf(kw, "unknown block %q (known: namespace, node, operator)", kw.text)
		}
	}
	return pol, nil
}

// namespaceBlock reads `"pattern" { policy = ..., capabilities = [...] }`.
func (p *parser) namespaceBlock(kw token, pol *Policy) error {
	name, err := p.expect(tokString, "naming the namespace after namespace")
	if err != nil {
		return err
	}
	if why := ValidPattern(name.text); why != "" {
		return p.errorf(name, "namespace %q %s", name.text, why)
	}
	for _, r := range pol.Namespaces {
		if r.Pattern == name.text {
			return p.errorf(name, "a second block for namespace %q", name.text)
		}
	}
	if len(pol.Namespaces) == MaxNamespaceRules {
		return p.errorf(kw, "more than %d namespace blocks", MaxNamespaceRules)
	}
	rule := NamespaceRule{Pattern: name.text}
	var sawPolicy, sawCaps bool
	err = p.attributes("namespace "+name.text, func(attr token, vals []token, list bool) error {
		switch attr.text {
		case "policy":
			if list || sawPolicy {
				return p.errorf(attr, "policy must be given once, as one string")
			}
			sawPolicy = true
			caps, ok := namespacePolicies[vals[0].text]
			if !ok {
				return p.errorf(vals[0], "unknown namespace policy %q (known: read, scale, write, deny)", vals[0].text)
			}
			rule.Policy = vals[0].text
			rule.Capabilities |= caps
		case "capabilities":
			if !list || sawCaps {
				return p.errorf(attr, "capabilities must be given once, as a list of strings")
			}
			sawCaps = true
			for _, v := range vals {
				c, ok := ParseCapability(v.text)
				if !ok {
					return p.errorf(v, "unknown capability %q (known: read, submit, scale, logs, deny)", v.text)
				}
				rule.Capabilities |= c
			}
		default:
			return p.errorf(attr, "unknown attribute %q in a namespace block (known: policy, capabilities)", attr.text)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !sawPolicy && !sawCaps {
		return p.errorf(name, "namespace %q grants nothing: give a policy or capabilities", name.text)
	}
	pol.Namespaces = append(pol.Namespaces, rule)
	return nil
}

// levelBlock reads `{ policy = "read|write|deny" }`.
func (p *parser) levelBlock(kw token) (Level, error) {
	what := kw.text
	l := LevelNone
	err := p.attributes(what, func(attr token, vals []token, list bool) error {
		if attr.text != "policy" {
			return p.errorf(attr, "unknown attribute %q in a %s block (known: policy)", attr.text, what)
		}
		if list || l != LevelNone {
			return p.errorf(attr, "policy must be given once, as one string")
		}
		v, ok := levelNames[vals[0].text]
		if !ok {
			return p.errorf(vals[0], "unknown %s policy %q (known: read, write, deny)", what, vals[0].text)
		}
		l = v
		return nil
	})
	if err == nil && l == LevelNone {
		return l, p.errorf(kw, "the %s block needs a policy", what)
	}
	return l, err
}

// maxListLen bounds a list value (there are five capabilities; repeats
// are allowed, but not without end).
const maxListLen = 64

// attributes reads `{ name = value ... }` and hands each attribute to fn:
// a string value as one token with list false, a list as its tokens.
func (p *parser) attributes(block string, fn func(attr token, vals []token, list bool) error) error {
	if _, err := p.expect(tokLBrace, "opening the "+block+" block"); err != nil {
		return err
	}
	for p.tok.kind != tokRBrace {
		attr, err := p.expect(tokIdent, "naming an attribute or closing the "+block+" block with '}'")
		if err != nil {
			return err
		}
		if _, err := p.expect(tokEquals, "after "+attr.text); err != nil {
			return err
		}
		var vals []token
		list := p.tok.kind == tokLBracket
		if list {
			if err := p.advance(); err != nil {
				return err
			}
			for p.tok.kind != tokRBracket {
				v, err := p.expect(tokString, "in the list of "+attr.text)
				if err != nil {
					return err
				}
				if len(vals) == maxListLen {
					return p.errorf(v, "the list of %s holds more than %d values", attr.text, maxListLen)
				}
				vals = append(vals, v)
				if p.tok.kind == tokRBracket {
					break
				}
				if _, err := p.expect(tokComma, "or ']' after a value of "+attr.text); err != nil {
					return err
				}
			}
			if err := p.advance(); err != nil {
				return err
			}
		} else {
			v, err := p.expect(tokString, "or '[' as the value of "+attr.text)
			if err != nil {
				return err
			}
			vals = append(vals, v)
		}
		if err := fn(attr, vals, list); err != nil {
			return err
		}
	}
	return p.advance()
}

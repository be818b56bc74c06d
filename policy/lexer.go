package policy

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tErr         // a lexical error; text holds the message
	tIdent
	tString
	tInt
	tDecimal // MAJOR.MINOR, only meaningful in the version statement
	tAssign  // =
	tEq      // ==
	tNe      // !=
	tLt      // <
	tLe      // <=
	tGt      // >
	tGe      // >=
	tArrow   // =>
	tAnd     // &&
	tNot     // !
	tColon
	tComma
	tSemi
	tDot
	tLParen
	tRParen
	tLBrack
	tRBrack
	tLBrace
	tRBrace
)

// punctText is the source text of a punctuation token.
func punctText(k tokKind) string {
	switch k {
	case tAssign:
		return "="
	case tEq:
		return "=="
	case tNe:
		return "!="
	case tLt:
		return "<"
	case tLe:
		return "<="
	case tGt:
		return ">"
	case tGe:
		return ">="
	case tArrow:
		return "=>"
	case tAnd:
		return "&&"
	case tNot:
		return "!"
	case tColon:
		return ":"
	case tComma:
		return ","
	case tSemi:
		return ";"
	case tDot:
		return "."
	case tLParen:
		return "("
	case tRParen:
		return ")"
	case tLBrack:
		return "["
	case tRBrack:
		return "]"
	case tLBrace:
		return "{"
	case tRBrace:
		return "}"
	}
	return "?"
}

type token struct {
	kind tokKind
	off  int    // byte offset of the first byte
	text string // identifier, decoded string, number text or error message
	n    int64  // tInt value
}

// describe renders a token for "found ..." in error messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of policy"
	case tIdent:
		return strconv.Quote(t.text)
	case tString:
		s := t.text
		if len(s) > 32 {
			s = s[:29] + "..."
		}
		return "string " + strconv.Quote(s)
	case tInt, tDecimal:
		return "number " + t.text
	case tErr:
		return "invalid input"
	}
	return strconv.Quote(punctText(t.kind))
}

// lex splits the whole policy into tokens up front: policies are small (MaxTextBytes) and the
// parser needs two tokens of lookahead. Lexing stops at the first lexical error, which becomes a
// tErr token so that an earlier syntax error is still reported first.
func lex(src string) []token {
	toks := make([]token, 0, len(src)/4+4)
	i := 0
	for {
		// Skip white space and comments.
		for i < len(src) {
			c := src[i]
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
				i++
				continue
			}
			if c == 0xEF && strings.HasPrefix(src[i:], "\uFEFF") {
				// Editors on Windows like to prepend a byte-order mark.
				i += 3
				continue
			}
			if c == '/' && i+1 < len(src) && src[i+1] == '/' {
				for i < len(src) && src[i] != '\n' {
					i++
				}
				continue
			}
			if c == '/' && i+1 < len(src) && src[i+1] == '*' {
				end := strings.Index(src[i+2:], "*/")
				if end < 0 {
					return append(toks, token{kind: tErr, off: i, text: "unterminated /* comment"})
				}
				i += 2 + end + 2
				continue
			}
			break
		}
		if i >= len(src) {
			return append(toks, token{kind: tEOF, off: len(src)})
		}
		start := i
		c := src[i]
		two := ""
		if i+1 < len(src) {
			two = src[i : i+2]
		}
		var kind tokKind
		switch {
		case isIdentStart(c):
			for i < len(src) && isIdentPart(src[i]) {
				i++
			}
			toks = append(toks, token{kind: tIdent, off: start, text: src[start:i]})
			continue
		case c == '"':
			s, end, msg, at := lexString(src, i)
			if msg != "" {
				return append(toks, token{kind: tErr, off: at, text: msg})
			}
			toks = append(toks, token{kind: tString, off: start, text: s})
			i = end
			continue
		case isDigit(c) || (c == '-' && i+1 < len(src) && isDigit(src[i+1])):
			t, end := lexNumber(src, i)
			toks = append(toks, t)
			if t.kind == tErr {
				return toks
			}
			i = end
			continue
		case two == "==":
			kind = tEq
		case two == "!=":
			kind = tNe
		case two == "<=":
			kind = tLe
		case two == ">=":
			kind = tGe
		case two == "=>":
			kind = tArrow
		case two == "&&":
			kind = tAnd
		case two == "=~" || two == "!~":
			return append(toks, token{kind: tErr, off: start, text: "regular-expression operators (=~, !~) are not part of the MAA policy language"})
		case two == "||":
			return append(toks, token{kind: tErr, off: start, text: `"||" is not part of the policy language; write one rule per alternative`})
		case c == '=':
			kind = tAssign
		case c == '<':
			kind = tLt
		case c == '>':
			kind = tGt
		case c == '!':
			kind = tNot
		case c == ':':
			kind = tColon
		case c == ',':
			kind = tComma
		case c == ';':
			kind = tSemi
		case c == '.':
			kind = tDot
		case c == '(':
			kind = tLParen
		case c == ')':
			kind = tRParen
		case c == '[':
			kind = tLBrack
		case c == ']':
			kind = tRBrack
		case c == '{':
			kind = tLBrace
		case c == '}':
			kind = tRBrace
		default:
			return append(toks, token{kind: tErr, off: start, text: unexpectedChar(src[start:])})
		}
		i += len(punctText(kind))
		toks = append(toks, token{kind: kind, off: start})
	}
}

func unexpectedChar(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	switch r {
	case '\u201C', '\u201D':
		return "typographic quote; use a plain double quote (\")"
	case utf8.RuneError:
		return "invalid UTF-8"
	}
	if r < 0x20 || r == 0x7f {
		return "unexpected control character " + strconv.QuoteRune(r)
	}
	return "unexpected character " + strconv.QuoteRune(r)
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func lexNumber(src string, i int) (token, int) {
	start := i
	if src[i] == '-' {
		i++
	}
	if src[i] == '0' && i+1 < len(src) && (src[i+1] == 'x' || src[i+1] == 'X') {
		// MAA documents hex only in a table of default values (required_pcr_mask = 0xFFFFFF), never
		// in a policy; accepting it would let policies pass here that MAA rejects.
		return token{kind: tErr, off: start, text: "hexadecimal literals are not supported; write the number in decimal"}, i
	}
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	if i+1 < len(src) && src[i] == '.' && isDigit(src[i+1]) {
		i++
		for i < len(src) && isDigit(src[i]) {
			i++
		}
		return token{kind: tDecimal, off: start, text: src[start:i]}, i
	}
	if i < len(src) && isIdentStart(src[i]) {
		return token{kind: tErr, off: start, text: "malformed number " + strconv.Quote(src[start:i+1])}, i
	}
	n, err := strconv.ParseInt(src[start:i], 10, 64)
	if err != nil {
		return token{kind: tErr, off: start, text: "integer " + src[start:i] + " does not fit in 64 bits"}, i
	}
	return token{kind: tInt, off: start, text: src[start:i], n: n}, i
}

// lexString decodes a double-quoted string starting at src[i]. It returns the decoded text and the
// offset after the closing quote, or an error message and the offset it applies to.
func lexString(src string, i int) (s string, end int, msg string, at int) {
	start := i
	i++ // opening quote
	// Fast path: no escapes.
	j := i
	for j < len(src) && src[j] != '"' && src[j] != '\\' && src[j] != '\n' {
		j++
	}
	if j < len(src) && src[j] == '"' {
		if !utf8.ValidString(src[i:j]) {
			return "", 0, "invalid UTF-8 in string", start
		}
		return src[i:j], j + 1, "", 0
	}
	var b strings.Builder
	b.WriteString(src[i:j])
	i = j
	for {
		if i >= len(src) || src[i] == '\n' {
			return "", 0, "unterminated string", start
		}
		c := src[i]
		if c == '"' {
			out := b.String()
			if !utf8.ValidString(out) {
				return "", 0, "invalid UTF-8 in string", start
			}
			return out, i + 1, "", 0
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(src) {
			return "", 0, "unterminated string", start
		}
		esc := src[i+1]
		switch esc {
		case '"', '\\', '/':
			b.WriteByte(esc)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, ok := hex4(src, i+2)
			if !ok {
				return "", 0, `invalid \u escape; expected four hex digits`, i
			}
			n := 6
			if utf16.IsSurrogate(r) {
				// A pair such as \ud83d\ude00 encodes one character; a lone half becomes U+FFFD.
				if r2, ok := hex4(src, i+8); ok && i+7 < len(src) && src[i+6] == '\\' && src[i+7] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, n = d, 12
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
			i += n
			continue
		default:
			return "", 0, "unknown escape sequence \\" + string(rune(esc)), i
		}
		i += 2
	}
}

func hex4(src string, i int) (rune, bool) {
	if i+4 > len(src) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(src[i : i+4]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

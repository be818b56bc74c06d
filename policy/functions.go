package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/jmespath/go-jmespath"
)

// call applies a built-in function (policy 1.2) to evaluated arguments.
func (ev *evaluator) call(e *expr, args []value) (value, *EvalError) {
	name := e.fn.name
	switch e.fn.id {
	case fnJmesPath:
		doc, err := ev.stringArg(e, args, 0)
		if err != nil {
			return value{}, err
		}
		q := e.query
		if q == nil {
			qs, err := ev.stringArg(e, args, 1)
			if err != nil {
				return value{}, err
			}
			if qs == "" {
				return value{}, e.evalErr("JmesPath: argument 2 must be a non-empty query")
			}
			var qerr error
			if q, qerr = compileQuery(qs); qerr != nil {
				return value{}, e.evalErr("JmesPath: invalid query %s: %v", quoteShort(qs), qerr)
			}
		}
		if doc == "" {
			return value{}, e.evalErr("JmesPath: argument 1 must be non-empty JSON")
		}
		// Parsed afresh on every call: go-jmespath's sort_by reorders its input in place, so a parsed
		// document cannot be shared between queries.
		var data any
		if err := json.Unmarshal([]byte(doc), &data); err != nil {
			return value{}, e.evalErr("JmesPath: argument 1 is not valid JSON: %s", shortErr(err))
		}
		res, serr := search(q, data)
		if serr != nil {
			return value{}, e.evalErr("JmesPath: %v", serr)
		}
		out, ok := appendJSON(nil, res, ev.lim.MaxValueBytes)
		if !ok {
			return value{}, e.evalErr("JmesPath: result is larger than %d bytes (MaxValueBytes)", ev.lim.MaxValueBytes)
		}
		return strVal(string(out)), nil

	case fnJsonToClaimValue:
		s, err := ev.stringArg(e, args, 0)
		if err != nil {
			return value{}, err
		}
		v, msg := jsonToValue(s, ev.lim.MaxClaims)
		if msg != "" {
			return value{}, e.evalErr("JsonToClaimValue: %s", msg)
		}
		return v, nil

	case fnIsSubsetOf:
		return boolVal(isSubset(members(&args[0]), members(&args[1]))), nil

	case fnAppendString:
		a, err := ev.stringArg(e, args, 0)
		if err != nil {
			return value{}, err
		}
		b, err := ev.stringArg(e, args, 1)
		if err != nil {
			return value{}, err
		}
		if len(a)+len(b) > ev.lim.MaxValueBytes {
			return value{}, e.evalErr("AppendString: result is larger than %d bytes (MaxValueBytes)", ev.lim.MaxValueBytes)
		}
		return strVal(a + b), nil

	case fnNegateBool:
		v, err := single(args[0], e.args[0].pos, name+": argument 1")
		if err != nil {
			return value{}, err
		}
		if v.k != kBool {
			return value{}, e.evalErr("NegateBool: argument 1 must be a Boolean, found %s", describeValue(v))
		}
		return boolVal(!v.b()), nil

	case fnContainsOnlyValue:
		v, err := single(args[1], e.args[1].pos, name+": argument 2")
		if err != nil {
			return value{}, err
		}
		if v.k == kNone {
			return value{}, e.evalErr("ContainsOnlyValue: argument 2 has no value")
		}
		set := members(&args[0])
		ok := len(set) > 0
		for i := range set {
			if !eqScalar(set[i], v) {
				ok = false
				break
			}
		}
		return boolVal(ok), nil
	}
	return value{}, e.evalErr("unknown function %s", name)
}

// stringArg returns argument i as a string. JSON values (structured incoming claims) are Strings
// holding their JSON text, so JmesPath(c.value, ...) works on x-ms-runtime and the like.
func (ev *evaluator) stringArg(e *expr, args []value, i int) (string, *EvalError) {
	v := args[i]
	if v.k == kSet && len(v.set) == 1 {
		v = v.set[0]
	}
	if v.k == kSet {
		return "", e.args[i].evalErr("%s: argument %d must be a single value, found a Set of %d values", e.fn.name, i+1, len(v.set))
	}
	if v.k != kString {
		return "", e.args[i].evalErr("%s: argument %d must be a String, found %s", e.fn.name, i+1, describeValue(v))
	}
	return v.s, nil
}

type memberKey struct {
	k kind
	n int64
	s string
}

// isSubset reports whether every member of a is in b. Members of different types are different.
func isSubset(a, b []value) bool {
	if len(a)*len(b) <= 256 {
		for i := range a {
			found := false
			for j := range b {
				if eqScalar(a[i], b[j]) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	in := make(map[memberKey]struct{}, len(b))
	for _, m := range b {
		in[memberKey{m.k, m.n, m.s}] = struct{}{}
	}
	for _, m := range a {
		if _, ok := in[memberKey{m.k, m.n, m.s}]; !ok {
			return false
		}
	}
	return true
}

// compileQuery compiles a JMESPath query, turning a panic in the library into an error: queries
// come from policy authors and must not be able to crash the service.
func compileQuery(q string) (jq *jmespath.JMESPath, err error) {
	defer func() {
		if r := recover(); r != nil {
			jq, err = nil, fmt.Errorf("query rejected: %v", r)
		}
	}()
	return jmespath.Compile(q)
}

func search(q *jmespath.JMESPath, data any) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("query failed: %v", r)
		}
	}()
	return q.Search(data)
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// appendJSON encodes a JMESPath result. It writes what encoding/json would (sorted object keys,
// the same number format) but without HTML escaping, and it stops as soon as the output passes
// limit: a query like {a:@,b:@} nested a few times describes a document far larger than its input,
// and encoding it in full before checking the size would be a denial of service.
func appendJSON(dst []byte, x any, limit int) ([]byte, bool) {
	if len(dst) > limit {
		return dst, false
	}
	switch t := x.(type) {
	case nil:
		dst = append(dst, "null"...)
	case bool:
		dst = strconv.AppendBool(dst, t)
	case float64:
		dst = appendFloat(dst, t)
	case int:
		dst = strconv.AppendInt(dst, int64(t), 10)
	case string:
		dst = appendString(dst, t)
	case []any:
		dst = append(dst, '[')
		for i, m := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, m, limit); !ok {
				return dst, false
			}
		}
		dst = append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendJSON(dst, t[k], limit); !ok {
				return dst, false
			}
		}
		dst = append(dst, '}')
	default:
		// go-jmespath only produces the types above; anything else is encoded the standard way.
		b, err := json.Marshal(t)
		if err != nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, b...)
		}
	}
	return dst, len(dst) <= limit
}

// appendFloat formats like encoding/json: integers without a fraction, exponents only for very
// large or small magnitudes.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

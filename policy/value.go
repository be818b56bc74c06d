package policy

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// kind is a claim value's type as the policy language sees it.
type kind uint8

const (
	kNone   kind = iota // "no value": JsonToClaimValue of JSON null
	kBool               // Boolean
	kInt                // Integer
	kString             // String (also JSON text, see value.json)
	kSet                // Set: a list of Boolean/Integer/String members
)

// Value type names, as MAA's documentation spells them; valueType tests compare against these.
const (
	typeString  = "String"
	typeInteger = "Integer"
	typeBoolean = "Boolean"
	typeSet     = "Set"
)

func (k kind) String() string {
	switch k {
	case kBool:
		return typeBoolean
	case kInt:
		return typeInteger
	case kString:
		return typeString
	case kSet:
		return typeSet
	}
	return "no value"
}

// value is a claim value. It is passed by value; only set members are shared, and they are never
// modified after creation.
type value struct {
	k kind
	// json marks a String whose text is the JSON encoding of a structured incoming value (a map,
	// struct, float...). MAA represents JSON as String claims, so the language treats it as one;
	// the flag only decides that issuing it emits the JSON value rather than a string holding it.
	json bool
	n    int64 // kInt; kBool as 0/1
	s    string
	set  []value
	// box caches the outgoing form (see out) when it is already known, so that issuing a value
	// that came in as a string or a literal does not allocate again.
	box any
}

func boolVal(b bool) value {
	if b {
		return value{k: kBool, n: 1}
	}
	return value{k: kBool}
}

func intVal(n int64) value { return value{k: kInt, n: n} }

func strVal(s string) value { return value{k: kString, s: s} }

func (v value) b() bool { return v.n != 0 }

// out converts a value to its outgoing Go form: bool, int64, string, []any or json.RawMessage.
func (v value) out() any {
	if v.box != nil {
		return v.box
	}
	switch v.k {
	case kBool:
		return v.b()
	case kInt:
		return v.n
	case kString:
		if v.json {
			return json.RawMessage(v.s)
		}
		return v.s
	case kSet:
		s := make([]any, len(v.set))
		for i, m := range v.set {
			s[i] = m.out()
		}
		return s
	}
	return nil
}

// withBox precomputes the outgoing form; used for literals, which are issued repeatedly.
func (v value) withBox() value {
	if v.k != kNone {
		v.box = v.out()
	}
	return v
}

// eqScalar reports whether two non-set values are equal: same type and same value. Strings
// compare byte for byte, so comparisons are case-sensitive.
func eqScalar(a, b value) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case kBool, kInt:
		return a.n == b.n
	case kString:
		return a.s == b.s
	}
	return false
}

// members returns v as a list: a Set's members, nothing for "no value", or v itself. The language
// treats a single value as a one-member set wherever a set is expected.
func members(v *value) []value {
	switch v.k {
	case kSet:
		return v.set
	case kNone:
		return nil
	}
	return []value{*v}
}

// fromGo converts one incoming Go value. lazy is non-nil when the value is a structured Go value
// whose JSON text has not been produced yet: encoding it costs more than the rest of an evaluation,
// and most policies never look at such claims (x-ms-sgx-collateral, for example) beyond their type.
// ok is false for nil, which stands for "no claim".
func fromGo(x any) (v value, lazy any, ok bool) {
	switch t := x.(type) {
	case nil:
		return value{}, nil, false
	case bool:
		return value{k: kBool, n: b2i(t), box: x}, nil, true
	case string:
		return value{k: kString, s: t, box: x}, nil, true
	case int64:
		return value{k: kInt, n: t, box: x}, nil, true
	case int:
		return intVal(int64(t)), nil, true
	case int8:
		return intVal(int64(t)), nil, true
	case int16:
		return intVal(int64(t)), nil, true
	case int32:
		return intVal(int64(t)), nil, true
	case uint:
		return uintVal(uint64(t), x)
	case uint8:
		return intVal(int64(t)), nil, true
	case uint16:
		return intVal(int64(t)), nil, true
	case uint32:
		return intVal(int64(t)), nil, true
	case uint64:
		return uintVal(t, x)
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return intVal(n), nil, true
		}
		return value{k: kString, json: true}, x, true
	case json.RawMessage:
		if t == nil {
			return value{}, nil, false
		}
		return value{k: kString, json: true}, x, true
	case []string:
		set := make([]value, len(t))
		for i, s := range t {
			set[i] = strVal(s)
		}
		return value{k: kSet, set: set}, nil, true
	case []any:
		if set, ok := primitiveSet(t); ok {
			return value{k: kSet, set: set}, nil, true
		}
		return value{k: kString, json: true}, x, true
	}
	return value{k: kString, json: true}, x, true
}

// kindOfGo tells what fromGo would make of x without converting it: the claim's kind, whether it
// is an empty set, and whether it is a claim at all. Matching calls it for every test on valueType
// and for the empty-set rule, so it must not allocate.
func kindOfGo(x any) (k kind, empty, present bool) {
	switch t := x.(type) {
	case nil:
		return kNone, false, false
	case bool:
		return kBool, false, true
	case string:
		return kString, false, true
	case int, int8, int16, int32, int64, uint8, uint16, uint32:
		return kInt, false, true
	case uint:
		if uint64(t) > math.MaxInt64 {
			return kString, false, true
		}
		return kInt, false, true
	case uint64:
		if t > math.MaxInt64 {
			return kString, false, true
		}
		return kInt, false, true
	case json.Number:
		if _, err := t.Int64(); err == nil {
			return kInt, false, true
		}
		return kString, false, true
	case json.RawMessage:
		return kString, false, t != nil
	case []string:
		return kSet, len(t) == 0, true
	case []any:
		n, ok := primitiveCount(t)
		if !ok {
			return kString, false, true
		}
		return kSet, n == 0, true
	}
	return kString, false, true
}

// primitiveCount counts the non-nil members of xs, and reports whether they are all primitives
// (so that xs is a Set rather than a JSON array).
func primitiveCount(xs []any) (int, bool) {
	n := 0
	for _, x := range xs {
		switch m := x.(type) {
		case nil:
			continue
		case bool, string, int, int8, int16, int32, int64, uint8, uint16, uint32:
		case uint:
			if uint64(m) > math.MaxInt64 {
				return 0, false
			}
		case uint64:
			if m > math.MaxInt64 {
				return 0, false
			}
		case json.Number:
			if _, err := m.Int64(); err != nil {
				return 0, false
			}
		default:
			return 0, false
		}
		n++
	}
	return n, true
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func uintVal(u uint64, x any) (value, any, bool) {
	if u > math.MaxInt64 {
		// Not representable as an Integer: keep it as a JSON number rather than wrap around.
		return value{k: kString, json: true}, x, true
	}
	return intVal(int64(u)), nil, true
}

// primitiveSet converts a []any whose members are all primitives. Nil members are dropped, as
// JsonToClaimValue drops JSON nulls.
func primitiveSet(xs []any) ([]value, bool) {
	n, ok := primitiveCount(xs)
	if !ok {
		return nil, false
	}
	set := make([]value, 0, n)
	for _, x := range xs {
		if x != nil {
			v, _, _ := fromGo(x)
			set = append(set, v)
		}
	}
	return set, true
}

// jsonToValue implements JsonToClaimValue: integers, booleans and strings map to themselves, an
// array of primitives becomes a Set (nulls dropped), null becomes "no value". Fractions, objects
// and nested arrays are errors, as MAA documents. Integers are read from the JSON text itself, so
// values beyond 2^53 keep every digit.
func jsonToValue(text string, maxMembers int) (value, string) {
	b := []byte(text)
	if !json.Valid(b) {
		var x any
		err := json.Unmarshal(b, &x) // only for its description of the problem
		if err == nil {
			return value{}, "argument is not valid JSON"
		}
		return value{}, "argument is not valid JSON: " + shortErr(err)
	}
	b = bytes.TrimSpace(b)
	switch b[0] {
	case '{':
		return value{}, "JSON objects cannot be converted to a claim value"
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(b, &elems); err != nil {
			return value{}, "argument is not valid JSON: " + shortErr(err)
		}
		if len(elems) > maxMembers {
			return value{}, "array has " + strconv.Itoa(len(elems)) + " elements, more than the limit of " + strconv.Itoa(maxMembers)
		}
		set := make([]value, 0, len(elems))
		for _, e := range elems {
			v, msg := jsonScalar(e)
			if msg != "" {
				return value{}, "array element: " + msg
			}
			if v.k != kNone {
				set = append(set, v)
			}
		}
		return value{k: kSet, set: set}, ""
	}
	return jsonScalar(b)
}

// jsonScalar converts one valid JSON value that is not an array element container.
func jsonScalar(b []byte) (value, string) {
	switch b[0] {
	case 'n':
		return value{}, ""
	case 't':
		return boolVal(true), ""
	case 'f':
		return boolVal(false), ""
	case '{':
		return value{}, "JSON objects cannot be converted to a claim value"
	case '[':
		return value{}, "nested arrays cannot be converted to a claim value"
	case '"':
		if bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
			return strVal(string(b[1 : len(b)-1])), ""
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return value{}, "invalid string: " + shortErr(err)
		}
		return strVal(s), ""
	}
	num := string(b)
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		return intVal(n), ""
	}
	// 1.0 and 1e3 are integers written differently; only true fractions are refused.
	f, err := strconv.ParseFloat(num, 64)
	if err == nil && f == math.Trunc(f) && f >= -(1<<63) && f < (1<<63) {
		return intVal(int64(f)), ""
	}
	return value{}, "number " + num + " is not an integer"
}

package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmespath/go-jmespath"
)

type section uint8

const (
	secConfig section = iota
	secAuth
	secIssue
	numSections
)

func (s section) String() string {
	switch s {
	case secConfig:
		return "configurationrules"
	case secAuth:
		return "authorizationrules"
	}
	return "issuancerules"
}

// prop is a claim property usable in tests and in IDENT.prop.
type prop uint8

const (
	pType prop = iota
	pValue
	pIssuer
	pValueType
)

func (p prop) String() string {
	switch p {
	case pType:
		return "type"
	case pValue:
		return "value"
	case pIssuer:
		return "issuer"
	}
	return "valueType"
}

type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

func (o op) String() string {
	return [...]string{"==", "!=", "<", "<=", ">", ">="}[o]
}

func (o op) ordering() bool { return o >= opLt }

// slotMode says how an identifier binds, decided per rule from how it is used.
type slotMode uint8

const (
	// modeNone: the identifier is never used, so its condition is only an existence test and does
	// not multiply the firings of the rule.
	modeNone slotMode = iota
	// modeIter: the rule fires once per matching claim (and per combination across identifiers),
	// as in the ADFS claim language that MAA's grammar comes from.
	modeIter
	// modeAgg: every use is a set argument (IsSubsetOf, the first argument of ContainsOnlyValue),
	// so the identifier stands for all matching claims at once; MAA's own examples rely on this, e.g.
	// ContainsOnlyValue(c.value, true) over every vsmEnabledSet claim issuing one result.
	modeAgg
)

// stype is an expression's static type; sAny when only evaluation can tell.
type stype uint8

const (
	sAny stype = iota
	sBool
	sInt
	sString
)

func (s stype) String() string {
	switch s {
	case sBool:
		return typeBoolean
	case sInt:
		return typeInteger
	case sString:
		return typeString
	}
	return "any value"
}

func stypeOf(k kind) stype {
	switch k {
	case kBool:
		return sBool
	case kInt:
		return sInt
	case kString:
		return sString
	}
	return sAny
}

// pos is a 1-based source position, kept on every node that can fail at run time.
type pos struct{ line, col int }

func (p pos) evalErr(format string, args ...any) *EvalError {
	return &EvalError{Line: p.line, Column: p.col, Msg: fmt.Sprintf(format, args...)}
}

type exprKind uint8

const (
	eLit exprKind = iota
	eRef
	eCall
)

type expr struct {
	kind exprKind
	st   stype
	pos
	lit value // eLit
	// eRef
	slot int
	prop prop
	agg  bool
	// eCall
	fn    *fnSpec
	args  []*expr
	query *jmespath.JMESPath // JmesPath with a literal query, compiled once
}

type test struct {
	prop prop
	op   op
	rhs  *expr
	dyn  int // index into the per-evaluation values of non-literal right-hand sides; -1 for literals
	pos
}

type cond struct {
	neg    bool
	slot   int // -1 without identifier
	mode   slotMode
	tests  []test // tests on type/issuer/valueType first, then the nValue tests on value
	nValue int
	nDyn   int
	pos
}

type actKind uint8

const (
	aPermit actKind = iota
	aDeny
	aAdd
	aIssue
	aProp
)

type action struct {
	kind      actKind
	claimSlot int // add/issue(claim=c); -1 otherwise
	typ, val  *expr
	issuer    *expr // nil: AttestationPolicy
	vtype     kind  // kNone: no valueType argument
	// hidden: no later rule has a condition that could match the claim this action adds, so
	// evaluation need not store it (see markHidden).
	hidden bool
	pos
}

type rule struct {
	conds []cond
	act   action
	pos
}

type refRec struct {
	e      *expr
	setArg bool
}

type parser struct {
	src    string
	toks   []token
	i      int
	lim    Limits
	minor  int // declared version 1.<minor>
	pol    *Policy
	nrules int
	// the last position computed, see lineCol
	lastOff, lastLine, lastCol int
	// current rule
	slotNames []string
	refs      []refRec
	claimRefs []int
}

func compile(text string, l Limits) *Policy {
	p := &parser{src: text, lim: l, lastLine: 1, lastCol: 1}
	if len(text) > l.MaxTextBytes {
		p.failAt(l.MaxTextBytes, KindLimit, "policy text is %d bytes, more than the limit of %d", len(text), l.MaxTextBytes)
	}
	p.toks = lex(text)
	p.pol = &Policy{text: text, lim: l, hash: Hash(text)}
	p.parsePolicy()
	return p.pol
}

// ---- positions and errors

func (p *parser) lineCol(off int) (int, int) {
	if off > len(p.src) {
		off = len(p.src)
	}
	// Positions are asked for in source order nearly always, so continue from the last answer
	// instead of counting from the line start each time (quadratic on one-line policies such as
	// MAA's default).
	if off < p.lastOff {
		p.lastOff, p.lastLine, p.lastCol = 0, 1, 1
	}
	line, col := p.lastLine, p.lastCol
	for i := p.lastOff; i < off; {
		c := p.src[i]
		if c == '\n' {
			line, col = line+1, 1
			i++
			continue
		}
		if c < utf8.RuneSelf {
			i++
		} else {
			_, n := utf8.DecodeRuneInString(p.src[i:off])
			i += n
		}
		col++
	}
	p.lastOff, p.lastLine, p.lastCol = off, line, col
	return line, col
}

func (p *parser) posOf(t token) pos {
	l, c := p.lineCol(t.off)
	return pos{l, c}
}

func (p *parser) failAt(off int, kind, format string, args ...any) {
	l, c := p.lineCol(off)
	panic(&Error{Line: l, Column: c, Kind: kind, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) fail(t token, kind, format string, args ...any) {
	p.failAt(t.off, kind, format, args...)
}

func (p *parser) failPos(ps pos, kind, format string, args ...any) {
	panic(&Error{Line: ps.line, Column: ps.col, Kind: kind, Msg: fmt.Sprintf(format, args...)})
}

// ---- token access

func (p *parser) peek() token {
	t := p.toks[p.i]
	if t.kind == tErr {
		p.fail(t, KindSyntax, "%s", t.text)
	}
	return t
}

// peekAt looks n tokens ahead without reporting lexical errors.
func (p *parser) peekAt(n int) token {
	if p.i+n >= len(p.toks) {
		return p.toks[len(p.toks)-1]
	}
	return p.toks[p.i+n]
}

func (p *parser) next() token {
	t := p.peek()
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) expect(k tokKind, context string) token {
	t := p.peek()
	if t.kind != k {
		p.fail(t, KindSyntax, "expected %q %s, found %s", punctText(k), context, t.describe())
	}
	return p.next()
}

func isKw(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

// ---- policy structure

func (p *parser) parsePolicy() {
	t := p.peek()
	if !isKw(t, "version") {
		p.fail(t, KindSyntax, `expected "version" at the start of the policy, found %s`, t.describe())
	}
	p.next()
	p.expect(tAssign, `after "version"`)
	t = p.next()
	switch {
	case t.kind == tInt:
		p.fail(t, KindSyntax, "version must be written MAJOR.MINOR, e.g. 1.0")
	case t.kind != tDecimal:
		p.fail(t, KindSyntax, "expected a version number, found %s", t.describe())
	}
	switch t.text {
	case "1.0", "1.1", "1.2":
		p.minor = int(t.text[2] - '0')
	default:
		p.fail(t, KindSemantic, "unsupported policy version %s; supported versions are 1.0, 1.1 and 1.2", t.text)
	}
	p.pol.version = t.text
	p.expect(tSemi, "after the version")

	var seen [numSections]bool
	last := section(0)
	for {
		t := p.peek()
		if t.kind == tEOF {
			break
		}
		sec, ok := sectionOf(t)
		if !ok {
			p.fail(t, KindSyntax, "expected a section (configurationrules, authorizationrules or issuancerules), found %s", t.describe())
		}
		if seen[sec] {
			p.fail(t, KindSyntax, "duplicate %s section", sec)
		}
		if sec < last {
			p.fail(t, KindSyntax, "%s must come before %s", sec, last)
		}
		if sec == secConfig && p.minor < 1 {
			p.fail(t, KindSemantic, "configurationrules requires policy version 1.1 or later; this policy declares version %s", p.pol.version)
		}
		seen[sec], last = true, sec
		p.next()
		p.expect(tLBrace, "after "+sec.String())
		for p.peek().kind != tRBrace {
			r := p.parseRule(sec)
			p.pol.sections[sec] = append(p.pol.sections[sec], r)
		}
		p.next()
		// MAA's documents end every section with "};", but a missing ";" is harmless and
		// unambiguous, so both forms are accepted.
		if p.peek().kind == tSemi {
			p.next()
		}
	}
	if !seen[secAuth] {
		p.fail(p.peek(), KindSyntax, "expected an authorizationrules section, found end of policy")
	}
	markHidden(p.pol)
}

// markHidden finds the add/issue/issueproperty actions whose claim no later rule can see, because
// every later condition requires some other literal type. MAA's default policy issues six claims
// that no rule looks at, and not storing them is most of what keeps its evaluation
// allocation-free. One backward pass keeps this linear in the size of the policy.
func markHidden(pol *Policy) {
	var all []*rule
	for _, rs := range pol.sections {
		all = append(all, rs...)
	}
	seenTypes := map[string]bool{} // literal types later conditions are limited to
	anyType := false               // some later condition is not limited to literal types
	for i := len(all) - 1; i >= 0; i-- {
		r := all[i]
		a := &r.act
		if (a.kind == aAdd || a.kind == aIssue || a.kind == aProp) && a.claimSlot < 0 &&
			a.typ.kind == eLit && a.typ.lit.k == kString {
			a.hidden = !anyType && !seenTypes[a.typ.lit.s]
		}
		for ci := range r.conds {
			types, limited := condTypes(&r.conds[ci])
			if !limited {
				anyType = true
			}
			for _, t := range types {
				seenTypes[t] = true
			}
		}
	}
}

// condTypes returns the claim types c can match when a literal type== test limits them.
func condTypes(c *cond) ([]string, bool) {
	for i := range c.tests {
		t := &c.tests[i]
		if t.prop != pType || t.op != opEq || t.rhs.kind != eLit {
			continue
		}
		switch lit := &t.rhs.lit; lit.k {
		case kString:
			return []string{lit.s}, true
		case kSet:
			var types []string
			for _, m := range lit.set {
				if m.k == kString {
					types = append(types, m.s)
				}
			}
			return types, true
		default:
			return nil, true // never matches
		}
	}
	return nil, false
}

func sectionOf(t token) (section, bool) {
	switch {
	case isKw(t, "configurationrules"):
		return secConfig, true
	case isKw(t, "authorizationrules"):
		return secAuth, true
	case isKw(t, "issuancerules"):
		return secIssue, true
	}
	return 0, false
}

func (p *parser) parseRule(sec section) *rule {
	start := p.peek()
	switch {
	case start.kind == tArrow, start.kind == tNot, start.kind == tLBrack:
	case start.kind == tIdent && p.peekAt(1).kind == tColon:
	default:
		p.fail(start, KindSyntax, `expected a rule or "}", found %s`, start.describe())
	}
	if p.nrules >= p.lim.MaxRules {
		p.fail(start, KindLimit, "more than %d rules", p.lim.MaxRules)
	}
	p.nrules++
	p.slotNames, p.refs, p.claimRefs = p.slotNames[:0], p.refs[:0], p.claimRefs[:0]
	r := &rule{pos: p.posOf(start)}
	if start.kind != tArrow {
		for {
			r.conds = append(r.conds, p.parseCond())
			t := p.peek()
			if t.kind == tAnd {
				p.next()
				continue
			}
			if t.kind == tArrow {
				break
			}
			p.fail(t, KindSyntax, `expected "&&" or "=>" after a condition, found %s`, t.describe())
		}
	}
	p.next() // =>
	r.act = p.parseAction(sec)
	if t := p.peek(); t.kind != tSemi {
		p.fail(t, KindSyntax, `expected ";" after rule, found %s`, t.describe())
	}
	p.next()

	// Decide how each identifier binds (see slotMode) now that all its uses are known.
	modes := make([]slotMode, len(p.slotNames))
	for _, s := range p.claimRefs {
		modes[s] = modeIter
	}
	for _, rr := range p.refs {
		if !rr.setArg {
			modes[rr.e.slot] = modeIter
		}
	}
	for _, rr := range p.refs {
		if rr.setArg && modes[rr.e.slot] == modeNone {
			modes[rr.e.slot] = modeAgg
		}
	}
	for _, rr := range p.refs {
		rr.e.agg = modes[rr.e.slot] == modeAgg
	}
	for i := range r.conds {
		if s := r.conds[i].slot; s >= 0 {
			r.conds[i].mode = modes[s]
		}
	}
	pol := p.pol
	pol.maxSlots = max(pol.maxSlots, len(p.slotNames))
	pol.maxConds = max(pol.maxConds, len(r.conds))
	switch r.act.kind {
	case aIssue:
		pol.nIssue++
		pol.nAdd++
	case aAdd, aProp:
		pol.nAdd++
	}
	return r
}

func (p *parser) slotOf(name string) int {
	for i, n := range p.slotNames {
		if n == name {
			return i
		}
	}
	return -1
}

func (p *parser) parseCond() cond {
	t := p.peek()
	c := cond{slot: -1, pos: p.posOf(t)}
	if t.kind == tNot {
		if p.minor < 2 {
			p.fail(t, KindSemantic, `the "!" (not) condition requires policy version 1.2; this policy declares version %s`, p.pol.version)
		}
		c.neg = true
		p.next()
		t = p.peek()
	}
	name := ""
	if t.kind == tIdent && p.peekAt(1).kind == tColon {
		if c.neg {
			p.fail(t, KindSemantic, "a negated condition matches no claim, so it cannot bind an identifier")
		}
		if isKw(t, "true") || isKw(t, "false") {
			p.fail(t, KindSemantic, "%s cannot be used as an identifier", t.text)
		}
		if p.slotOf(t.text) >= 0 {
			p.fail(t, KindSemantic, "identifier %q is already bound in this rule", t.text)
		}
		name = t.text
		p.next()
		p.next()
		t = p.peek()
	}
	if t.kind != tLBrack {
		p.fail(t, KindSyntax, `expected "[" to start a condition, found %s`, t.describe())
	}
	p.next()
	if t := p.peek(); t.kind == tRBrack {
		p.fail(t, KindSyntax, `empty condition; add a test such as type=="..."`)
	}
	var valueTests []test
	for {
		tt := p.parseTest()
		if tt.prop == pValue {
			valueTests = append(valueTests, tt)
		} else {
			c.tests = append(c.tests, tt)
		}
		t := p.next()
		if t.kind == tComma {
			continue
		}
		if t.kind == tRBrack {
			break
		}
		p.fail(t, KindSyntax, `expected "," or "]" in a condition, found %s`, t.describe())
	}
	// Tests have no side effects, so the cheap string tests on type and issuer go first and the
	// value tests, which may need a set walked or JSON produced, last.
	c.nValue = len(valueTests)
	c.tests = append(c.tests, valueTests...)
	for i := range c.tests {
		c.tests[i].dyn = -1
		if c.tests[i].rhs.kind != eLit {
			c.tests[i].dyn = c.nDyn
			c.nDyn++
		}
	}
	// The identifier is bound only after its own condition, so [value == c.value] inside c's own
	// brackets is an undefined identifier.
	if name != "" {
		c.slot = len(p.slotNames)
		p.slotNames = append(p.slotNames, name)
	}
	return c
}

func propOf(t token) (prop, bool) {
	switch {
	case isKw(t, "type"):
		return pType, true
	case isKw(t, "value"):
		return pValue, true
	case isKw(t, "issuer"):
		return pIssuer, true
	case isKw(t, "valuetype"):
		return pValueType, true
	}
	return 0, false
}

func (p *parser) parseTest() test {
	t := p.next()
	pr, ok := propOf(t)
	if !ok {
		p.fail(t, KindSyntax, "expected a claim property (type, value, issuer or valueType), found %s", t.describe())
	}
	ot := p.next()
	var o op
	switch ot.kind {
	case tEq:
		o = opEq
	case tNe:
		o = opNe
	case tLt:
		o = opLt
	case tLe:
		o = opLe
	case tGt:
		o = opGt
	case tGe:
		o = opGe
	case tAssign:
		p.fail(ot, KindSyntax, `expected a comparison operator after %s, found "="; use "==" to compare`, pr)
	default:
		p.fail(ot, KindSyntax, "expected a comparison operator (==, !=, <, <=, >, >=) after %s, found %s", pr, ot.describe())
	}
	rhs := p.parseExpr(0, false)
	tt := test{prop: pr, op: o, rhs: rhs, pos: p.posOf(t)}
	if pr != pValue {
		if o.ordering() {
			p.fail(ot, KindSemantic, "operator %s cannot be applied to %s, which is a String; only Integer values can be ordered", o, pr)
		}
		if rhs.st == sBool || rhs.st == sInt {
			p.failPos(rhs.pos, KindSemantic, "%s is a String and can never equal %s %s", pr, aOrAn(rhs.st), rhs.st)
		}
		if rhs.kind == eLit && rhs.lit.k == kString {
			switch pr {
			case pValueType:
				switch rhs.lit.s {
				case typeString, typeInteger, typeBoolean, typeSet:
				default:
					p.failPos(rhs.pos, KindSemantic, `unknown valueType %q; valueType is one of "String", "Integer", "Boolean" or "Set"`, rhs.lit.s)
				}
			case pIssuer:
				switch rhs.lit.s {
				case IssuerService, IssuerPolicy, IssuerCustom:
				default:
					p.failPos(rhs.pos, KindSemantic, `unknown issuer %q; issuer is one of "AttestationService", "AttestationPolicy" or "CustomClaim"`, rhs.lit.s)
				}
			}
		}
	} else if o.ordering() && (rhs.st == sBool || rhs.st == sString) {
		p.failPos(rhs.pos, KindSemantic, "operator %s needs an Integer operand, found %s; only Integer values can be ordered", o, rhs.st)
	}
	return tt
}

func aOrAn(s stype) string {
	if s == sInt {
		return "an"
	}
	return "a"
}

// ---- expressions

func (p *parser) parseExpr(depth int, setArg bool) *expr {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &expr{kind: eLit, st: sString, lit: strVal(t.text).withBox(), pos: p.posOf(t)}
	case tInt:
		p.next()
		return &expr{kind: eLit, st: sInt, lit: intVal(t.n).withBox(), pos: p.posOf(t)}
	case tDecimal:
		p.fail(t, KindSemantic, "fractional numbers are not supported; claim values are Integer, Boolean or String")
	case tIdent:
		switch nt := p.peekAt(1); {
		case nt.kind == tLParen:
			return p.parseCall(depth)
		case nt.kind == tDot:
			return p.parseRef(setArg)
		case isKw(t, "true"), isKw(t, "false"):
			p.next()
			return &expr{kind: eLit, st: sBool, lit: boolVal(isKw(t, "true")).withBox(), pos: p.posOf(t)}
		case p.slotOf(t.text) >= 0:
			p.fail(nt, KindSyntax, `expected "." and a property after identifier %q, found %s`, t.text, nt.describe())
		case fnByName(t.text) != nil:
			p.fail(nt, KindSyntax, `expected "(" after function name %s, found %s`, t.text, nt.describe())
		}
		p.fail(t, KindSemantic, "undefined identifier %q; identifiers are bound by an earlier condition of the same rule, as in c:[type==\"...\"] => issue(type=\"x\", value=c.value)", t.text)
	}
	p.fail(t, KindSyntax, "expected an expression (a string, an integer, true, false, IDENT.property or a function call), found %s", t.describe())
	return nil
}

func (p *parser) parseRef(setArg bool) *expr {
	nameTok := p.next()
	p.next() // .
	slot := p.slotOf(nameTok.text)
	if slot < 0 {
		p.fail(nameTok, KindSemantic, "undefined identifier %q; identifiers are bound by an earlier condition of the same rule", nameTok.text)
	}
	pt := p.next()
	if pt.kind != tIdent {
		p.fail(pt, KindSyntax, `expected a property name after "%s.", found %s`, nameTok.text, pt.describe())
	}
	pr, ok := propOf(pt)
	if !ok {
		p.fail(pt, KindSemantic, "unknown property %q; a claim has value, type, issuer and valueType", pt.text)
	}
	e := &expr{kind: eRef, slot: slot, prop: pr, st: sString, pos: p.posOf(nameTok)}
	if pr == pValue {
		e.st = sAny
	}
	p.refs = append(p.refs, refRec{e, setArg})
	return e
}

func (p *parser) parseCall(depth int) *expr {
	nameTok := p.next()
	// depth counts the calls around this one; bounding it bounds the parser's and the
	// evaluator's recursion.
	if depth+1 > p.lim.MaxDepth {
		p.fail(nameTok, KindLimit, "function calls nested more than %d deep", p.lim.MaxDepth)
	}
	if p.minor < 2 {
		p.fail(nameTok, KindSemantic, "function %s requires policy version 1.2; this policy declares version %s", nameTok.text, p.pol.version)
	}
	spec := fnByName(nameTok.text)
	if spec == nil {
		p.fail(nameTok, KindSemantic, "unknown function %q; the functions are JmesPath, JsonToClaimValue, IsSubsetOf, AppendString, NegateBool and ContainsOnlyValue", nameTok.text)
	}
	p.next() // (
	e := &expr{kind: eCall, fn: spec, st: spec.ret, pos: p.posOf(nameTok)}
	if p.peek().kind == tRParen {
		p.next()
	} else {
		for {
			if len(e.args) == spec.arity {
				p.fail(p.peek(), KindSemantic, "%s takes %d argument%s, found more", spec.name, spec.arity, plural(spec.arity))
			}
			i := len(e.args)
			e.args = append(e.args, p.parseExpr(depth+1, spec.setArg[i]))
			t := p.next()
			if t.kind == tRParen {
				break
			}
			if t.kind != tComma {
				p.fail(t, KindSyntax, `expected "," or ")" in the arguments of %s, found %s`, spec.name, t.describe())
			}
		}
	}
	if len(e.args) != spec.arity {
		p.fail(nameTok, KindSemantic, "%s takes %d argument%s, found %d", spec.name, spec.arity, plural(spec.arity), len(e.args))
	}
	allLit := true
	for i, a := range e.args {
		want := spec.argType[i]
		if want != sAny && a.st != sAny && a.st != want {
			p.failPos(a.pos, KindSemantic, "%s: argument %d must be %s %s, found %s %s", spec.name, i+1, aOrAn(want), want, aOrAn(a.st), a.st)
		}
		if a.kind != eLit {
			allLit = false
		}
	}
	if spec.id == fnJmesPath {
		for i, a := range e.args {
			if a.kind == eLit && a.lit.k == kString && a.lit.s == "" {
				p.failPos(a.pos, KindSemantic, "JmesPath: argument %d must not be empty", i+1)
			}
		}
		if q := e.args[1]; q.kind == eLit && q.lit.k == kString {
			jq, err := compileQuery(q.lit.s)
			if err != nil {
				p.failPos(q.pos, KindSyntax, "JmesPath: invalid query: %v", err)
			}
			e.query = jq
		}
	}
	if allLit {
		// Every argument is known: evaluate now, so that a call that can only fail (JSON that does
		// not parse, an object passed to JsonToClaimValue) is reported when the policy is set rather
		// than on every attestation.
		args := make([]value, len(e.args))
		for i, a := range e.args {
			args[i] = a.lit
		}
		ev := &evaluator{lim: p.lim}
		v, err := ev.call(e, args)
		if err != nil {
			p.failPos(e.pos, KindSemantic, "%s", err.Msg)
		}
		return &expr{kind: eLit, st: stypeOf(v.k), lit: v.withBox(), pos: e.pos}
	}
	return e
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ---- actions

func (p *parser) parseAction(sec section) action {
	t := p.next()
	a := action{claimSlot: -1, pos: p.posOf(t)}
	if t.kind != tIdent {
		p.fail(t, KindSyntax, `expected an action (permit, deny, add, issue or issueproperty) after "=>", found %s`, t.describe())
	}
	switch {
	case isKw(t, "permit"):
		a.kind = aPermit
	case isKw(t, "deny"):
		a.kind = aDeny
	case isKw(t, "add"):
		a.kind = aAdd
	case isKw(t, "issue"):
		a.kind = aIssue
	case isKw(t, "issueproperty"):
		a.kind = aProp
	default:
		p.fail(t, KindSemantic, "unknown action %q; the actions are permit, deny, add, issue and issueproperty", t.text)
	}
	name := strings.ToLower(t.text)
	allowed := false
	where := ""
	switch a.kind {
	case aPermit, aDeny:
		allowed, where = sec == secAuth, "authorizationrules"
	case aAdd:
		allowed, where = sec == secAuth || sec == secIssue, "authorizationrules and issuancerules"
	case aIssue:
		allowed, where = sec == secIssue, "issuancerules"
	case aProp:
		allowed, where = sec == secConfig || sec == secIssue, "configurationrules and issuancerules"
	}
	if !allowed {
		p.fail(t, KindSemantic, "%s() is not allowed in %s; it may only appear in %s", name, sec, where)
	}
	p.expect(tLParen, "after "+name)
	if a.kind == aPermit || a.kind == aDeny {
		if tk := p.peek(); tk.kind != tRParen {
			p.fail(tk, KindSyntax, "%s() takes no arguments, found %s", name, tk.describe())
		}
		p.next()
		return a
	}
	if tk := p.peek(); tk.kind == tRParen {
		p.fail(tk, KindSemantic, "%s needs type= and value= arguments", name)
	}
	seen := map[string]bool{}
	for {
		at := p.next()
		an := strings.ToLower(at.text)
		if at.kind != tIdent {
			p.fail(at, KindSyntax, "expected an argument name (type, value, valueType, issuer or claim) in %s, found %s", name, at.describe())
		}
		switch an {
		case "type", "value":
		case "valuetype", "issuer", "claim":
			if a.kind == aProp {
				p.fail(at, KindSemantic, "issueproperty takes only type= and value=")
			}
		default:
			p.fail(at, KindSemantic, "unknown argument %q in %s; the arguments are type, value, valueType, issuer and claim", at.text, name)
		}
		if seen[an] {
			p.fail(at, KindSemantic, "argument %s given twice", at.text)
		}
		seen[an] = true
		if eq := p.peek(); eq.kind != tAssign {
			p.fail(eq, KindSyntax, `expected "=" after %s, found %s`, at.text, eq.describe())
		}
		p.next()
		switch an {
		case "claim":
			it := p.next()
			if it.kind != tIdent {
				p.fail(it, KindSyntax, "expected an identifier after claim=, found %s", it.describe())
			}
			s := p.slotOf(it.text)
			if s < 0 {
				p.fail(it, KindSemantic, "undefined identifier %q; identifiers are bound by an earlier condition of the same rule", it.text)
			}
			a.claimSlot = s
			p.claimRefs = append(p.claimRefs, s)
		case "valuetype":
			vt := p.next()
			if vt.kind != tString {
				p.fail(vt, KindSemantic, `valueType must be a string literal: "String", "Integer", "Boolean" or "Set"`)
			}
			switch vt.text {
			case typeString:
				a.vtype = kString
			case typeInteger:
				a.vtype = kInt
			case typeBoolean:
				a.vtype = kBool
			case typeSet:
				a.vtype = kSet
			default:
				p.fail(vt, KindSemantic, `unknown valueType %q; valueType is one of "String", "Integer", "Boolean" or "Set"`, vt.text)
			}
		case "issuer":
			a.issuer = p.parseExpr(0, false)
			if e := a.issuer; e.st == sBool || e.st == sInt {
				p.failPos(e.pos, KindSemantic, "issuer must be a String, found %s %s", aOrAn(e.st), e.st)
			}
			if e := a.issuer; e.kind == eLit && e.lit.k == kString && !issuableIssuer(e.lit.s) {
				p.failPos(e.pos, KindSemantic, "issuer %q cannot be set by a policy; use %q or %q", e.lit.s, IssuerPolicy, IssuerCustom)
			}
		case "type":
			a.typ = p.parseExpr(0, false)
			if e := a.typ; e.st == sBool || e.st == sInt {
				p.failPos(e.pos, KindSemantic, "a claim type must be a String, found %s %s", aOrAn(e.st), e.st)
			}
			if e := a.typ; e.kind == eLit && e.lit.k == kString && e.lit.s == "" {
				p.failPos(e.pos, KindSemantic, "a claim type must not be empty")
			}
		case "value":
			a.val = p.parseExpr(0, false)
		}
		t := p.next()
		if t.kind == tRParen {
			break
		}
		if t.kind != tComma {
			p.fail(t, KindSyntax, `expected "," or ")" in the arguments of %s, found %s`, name, t.describe())
		}
	}
	if a.claimSlot >= 0 {
		if len(seen) > 1 {
			p.failPos(a.pos, KindSemantic, "%s(claim=...) takes no other arguments", name)
		}
		return a
	}
	if a.typ == nil || a.val == nil {
		missing := "type="
		if a.typ != nil {
			missing = "value="
		}
		p.failPos(a.pos, KindSemantic, "%s needs a %s argument", name, missing)
	}
	if a.vtype != kNone && a.val.st != sAny && stypeOf(a.vtype) != a.val.st {
		p.failPos(a.val.pos, KindSemantic, "value is %s %s but valueType says %s", aOrAn(a.val.st), a.val.st, a.vtype)
	}
	if a.vtype != kNone && a.val.kind == eLit && a.val.lit.k != kNone && a.val.lit.k != a.vtype {
		p.failPos(a.val.pos, KindSemantic, "value is %s but valueType says %s", a.val.lit.k, a.vtype)
	}
	if a.kind == aProp {
		p.checkProperty(&a)
	}
	return a
}

func issuableIssuer(s string) bool { return s == IssuerPolicy || s == IssuerCustom }

// checkProperty validates what issueproperty sets as far as literals allow; the rest is checked at
// evaluation.
func (p *parser) checkProperty(a *action) {
	if a.typ.kind != eLit || a.typ.lit.k != kString {
		return
	}
	spec := propertyByName(a.typ.lit.s)
	if spec == nil {
		p.failPos(a.typ.pos, KindSemantic, "unknown property %q; the properties are %s", a.typ.lit.s, propertyNames)
	}
	if a.val.kind == eLit {
		if a.val.lit.k == kNone {
			return
		}
		if msg := spec.check(a.val.lit); msg != "" {
			p.failPos(a.val.pos, KindSemantic, "%s", msg)
		}
		return
	}
	if a.val.st != sAny && a.val.st != stypeOf(spec.k) {
		p.failPos(a.val.pos, KindSemantic, "property %s takes %s %s, found %s %s", spec.name, aOrAn(stypeOf(spec.k)), spec.k, aOrAn(a.val.st), a.val.st)
	}
}

// ---- properties

type propertySpec struct {
	name     string
	k        kind
	min, max int64 // for Integer properties
}

const propertyNames = "x-ms-sgx-tcbidentifier, require_valid_aik_cert, required_pcr_mask, report_validity_in_minutes and omit_x5c"

func propertyByName(name string) *propertySpec {
	switch name {
	case "x-ms-sgx-tcbidentifier":
		return &propertySpec{name: name, k: kString}
	case "require_valid_aik_cert", "omit_x5c":
		return &propertySpec{name: name, k: kBool}
	case "required_pcr_mask":
		// Bit n selects PCR n; TPM 2.0 has 24 PCRs, hence MAA's default 0xFFFFFF.
		return &propertySpec{name: name, k: kInt, min: 0, max: 0xFFFFFF}
	case "report_validity_in_minutes":
		// MAA documents a maximum of one year.
		return &propertySpec{name: name, k: kInt, min: 1, max: 525600}
	}
	return nil
}

func (s *propertySpec) check(v value) string {
	if v.k != s.k {
		return fmt.Sprintf("property %s takes %s %s, found %s %s", s.name, aOrAn(stypeOf(s.k)), s.k, aOrAn(stypeOf(v.k)), v.k)
	}
	switch s.k {
	case kInt:
		if v.n < s.min || v.n > s.max {
			return fmt.Sprintf("property %s must be between %d and %d, found %d", s.name, s.min, s.max, v.n)
		}
	case kString:
		if v.s == "" {
			return fmt.Sprintf("property %s must not be empty", s.name)
		}
	}
	return ""
}

// ---- functions

type fnID uint8

const (
	fnJmesPath fnID = iota
	fnJsonToClaimValue
	fnIsSubsetOf
	fnAppendString
	fnNegateBool
	fnContainsOnlyValue
)

type fnSpec struct {
	id      fnID
	name    string
	arity   int
	ret     stype
	argType [2]stype // sAny: anything
	setArg  [2]bool  // the argument is read as a set (see modeAgg)
}

// fnByName finds a function; names are case-insensitive like every other word of the language.
// It returns a fresh spec each time so that no table is shared between policies.
func fnByName(name string) *fnSpec {
	switch strings.ToLower(name) {
	case "jmespath":
		return &fnSpec{id: fnJmesPath, name: "JmesPath", arity: 2, ret: sString, argType: [2]stype{sString, sString}}
	case "jsontoclaimvalue":
		return &fnSpec{id: fnJsonToClaimValue, name: "JsonToClaimValue", arity: 1, ret: sAny, argType: [2]stype{sString}}
	case "issubsetof":
		return &fnSpec{id: fnIsSubsetOf, name: "IsSubsetOf", arity: 2, ret: sBool, setArg: [2]bool{true, true}}
	case "appendstring":
		return &fnSpec{id: fnAppendString, name: "AppendString", arity: 2, ret: sString, argType: [2]stype{sString, sString}}
	case "negatebool":
		return &fnSpec{id: fnNegateBool, name: "NegateBool", arity: 1, ret: sBool, argType: [2]stype{sBool}}
	case "containsonlyvalue":
		return &fnSpec{id: fnContainsOnlyValue, name: "ContainsOnlyValue", arity: 2, ret: sBool, setArg: [2]bool{true, false}}
	}
	return nil
}

// quoteShort is strconv.Quote for messages, cut to a readable length.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return strconv.Quote(s)
}

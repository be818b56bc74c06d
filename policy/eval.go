package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// wclaim is a claim the policy added to the working set.
type wclaim struct {
	typ, issuer string
	v           value
}

// binding is what an identifier stands for while a rule is being matched.
type binding struct {
	// modeIter: one claim; filt holds the members that matched when the claim is a Set and the
	// condition tested its value, so that c.value is what the condition selected.
	idx      int
	filtered bool
	filt     []value
	// modeAgg: every matching claim.
	agg []aggRef
}

type aggRef struct {
	idx      int
	filtered bool
	filt     []value
}

// evaluator is the state of one evaluation. The working set is the incoming claims, read in place
// (copying them would cost more than evaluating most policies), followed by the claims the policy
// added; a claim index below len(in) refers to an incoming claim.
type evaluator struct {
	p      *Policy
	lim    Limits
	ctx    context.Context
	in     []Claim
	added  []wclaim
	nclaim int // claims in the working set, including added claims no rule can see
	// conv caches converted incoming values that are costly to convert (sets, JSON text); an
	// entry of kind kNone is not filled yet. Allocated on first use.
	conv    []value
	out     []Claim
	props   map[string]any
	bindBuf [4]binding
	bindsX  []binding // bindings beyond len(bindBuf)
	aggBufs [][]aggRef
	steps   int
	combos  int
	cur     *rule
	permit  bool
	denied  *action
	stop    bool
}

// Evaluate runs the policy over the incoming claims. It never panics (a panic inside is recovered
// and returned as an *EvalError), never runs unbounded (see Limits), honours ctx cancellation
// between rules and during long condition scans, and enforces Limits. Every error is an *EvalError;
// on error the Decision is nil. incoming is read, never modified or retained.
func (p *Policy) Evaluate(ctx context.Context, incoming []Claim) (d *Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, &EvalError{Msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	if p == nil {
		return nil, &EvalError{Msg: "nil policy"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ev := evaluator{p: p, lim: p.lim, ctx: ctx, in: incoming}
	if e := ev.run(); e != nil {
		return nil, e
	}
	d = &Decision{Properties: ev.props}
	switch {
	case ev.denied != nil:
		d.Reason = fmt.Sprintf("deny() at line %d, column %d", ev.denied.line, ev.denied.col)
	case ev.permit:
		d.Permit = true
		d.Issued = ev.out
	default:
		d.Reason = "no authorization rule permitted"
	}
	return d, nil
}

func (ev *evaluator) run() *EvalError {
	p := ev.p
	if len(ev.in) > ev.lim.MaxClaims {
		return &EvalError{Msg: fmt.Sprintf("%d incoming claims, more than the limit of %d", len(ev.in), ev.lim.MaxClaims)}
	}
	ev.nclaim = len(ev.in)
	if p.maxSlots > len(ev.bindBuf) {
		ev.bindsX = make([]binding, p.maxSlots-len(ev.bindBuf))
	}
	if err := ev.runSection(secConfig); err != nil {
		return err
	}
	if err := ev.runSection(secAuth); err != nil {
		return err
	}
	// Issuance cannot change the outcome, so it runs only when there is something to issue.
	if ev.denied == nil && ev.permit {
		if p.nIssue > 0 {
			ev.out = make([]Claim, 0, p.nIssue)
		}
		if err := ev.runSection(secIssue); err != nil {
			return err
		}
	}
	return nil
}

func (ev *evaluator) bind(slot int) *binding {
	if slot < len(ev.bindBuf) {
		return &ev.bindBuf[slot]
	}
	return &ev.bindsX[slot-len(ev.bindBuf)]
}

func (ev *evaluator) runSection(sec section) *EvalError {
	for _, r := range ev.p.sections[sec] {
		if err := ev.ctx.Err(); err != nil {
			return &EvalError{Line: r.line, Column: r.col, Msg: "evaluation stopped: " + err.Error(), err: err}
		}
		ev.cur = r
		ev.combos = 0
		// Conditions see the working set as it was when the rule started: claims the rule adds are
		// visible to later rules only, which also keeps a rule from feeding on its own output.
		if err := ev.match(r, 0, len(ev.in)+len(ev.added)); err != nil {
			return err
		}
		if ev.stop {
			// deny() wins over any permit(), so nothing after it can change the decision.
			return nil
		}
	}
	return nil
}

// match checks conditions ci.. of r and fires the action for every combination of bindings.
func (ev *evaluator) match(r *rule, ci, n0 int) *EvalError {
	if ci == len(r.conds) {
		return ev.fire(r)
	}
	c := &r.conds[ci]
	var dyn []value
	if c.nDyn > 0 {
		// Right-hand sides that are not literals are evaluated once per check of the condition,
		// before any claim is looked at; they can only depend on earlier identifiers.
		dyn = make([]value, c.nDyn)
		for i := range c.tests {
			t := &c.tests[i]
			if t.dyn >= 0 {
				v, err := ev.eval(t.rhs)
				if err != nil {
					return err
				}
				dyn[t.dyn] = v
			}
		}
	}
	switch {
	case c.neg || c.mode == modeNone:
		found := false
		for i := 0; i < n0; i++ {
			ok, _, _, err := ev.matchClaim(c, dyn, i, false)
			if err != nil {
				return err
			}
			if ok {
				found = true
				break
			}
		}
		if found == c.neg {
			return nil
		}
		return ev.match(r, ci+1, n0)
	case c.mode == modeIter:
		for i := 0; i < n0; i++ {
			ok, filt, filtered, err := ev.matchClaim(c, dyn, i, true)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			ev.combos++
			if ev.combos > ev.lim.MaxBindingsPerRule {
				return r.evalErr("rule matched more than %d combinations of claims (MaxBindingsPerRule)", ev.lim.MaxBindingsPerRule)
			}
			b := ev.bind(c.slot)
			b.idx, b.filtered, b.filt = i, filtered, filt
			if err := ev.match(r, ci+1, n0); err != nil {
				return err
			}
			if ev.stop {
				return nil
			}
		}
		return nil
	default: // modeAgg
		if ev.aggBufs == nil {
			ev.aggBufs = make([][]aggRef, ev.p.maxConds)
		}
		buf := ev.aggBufs[ci][:0]
		for i := 0; i < n0; i++ {
			ok, filt, filtered, err := ev.matchClaim(c, dyn, i, true)
			if err != nil {
				return err
			}
			if ok {
				buf = append(buf, aggRef{i, filtered, filt})
			}
		}
		ev.aggBufs[ci] = buf
		if len(buf) == 0 {
			return nil
		}
		ev.bind(c.slot).agg = buf
		return ev.match(r, ci+1, n0)
	}
}

func rhsOf(t *test, dyn []value) *value {
	if t.dyn < 0 {
		return &t.rhs.lit
	}
	return &dyn[t.dyn]
}

// header returns what matching needs of claim i without converting its value: type, issuer,
// kind, and whether it is present (nil incoming values are not claims) and not an empty set.
func (ev *evaluator) header(i int) (typ, issuer string, k kind, live bool) {
	if i < len(ev.in) {
		c := &ev.in[i]
		k, empty, present := kindOfGo(c.Value)
		issuer = c.Issuer
		if issuer == "" {
			issuer = IssuerService
		}
		return c.Type, issuer, k, present && !empty
	}
	a := &ev.added[i-len(ev.in)]
	return a.typ, a.issuer, a.v.k, a.v.k != kSet || len(a.v.set) > 0
}

// valueOf returns claim i's value, converting an incoming value on first use.
func (ev *evaluator) valueOf(i int, at pos) (value, *EvalError) {
	if i >= len(ev.in) {
		return ev.added[i-len(ev.in)].v, nil
	}
	if ev.conv != nil && ev.conv[i].k != kNone {
		return ev.conv[i], nil
	}
	c := &ev.in[i]
	v, lazy, _ := fromGo(c.Value)
	if lazy == nil && v.k != kSet {
		// Scalars convert for free; only sets and JSON are worth caching.
		return v, nil
	}
	if lazy != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		// Keep <, > and & readable: this text is compared with policy literals and fed to JmesPath.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(lazy); err != nil {
			return value{}, at.evalErr("claim %s: value cannot be encoded as JSON: %v", quoteShort(c.Type), err)
		}
		b := bytes.TrimRight(buf.Bytes(), "\n")
		v.s = string(b)
		v.box = json.RawMessage(v.s)
	}
	if ev.conv == nil {
		ev.conv = make([]value, len(ev.in))
	}
	ev.conv[i] = v
	return v, nil
}

// matchClaim reports whether claim i satisfies every test of c. For a Set-valued claim the value
// tests must all hold for one member, because MAA models a set as several claims of one type; an
// empty set therefore matches nothing. With wantFilt, the matching members are returned when they
// are not the whole set.
func (ev *evaluator) matchClaim(c *cond, dyn []value, i int, wantFilt bool) (bool, []value, bool, *EvalError) {
	ev.steps++
	if ev.steps > ev.lim.MaxSteps {
		return false, nil, false, ev.cur.evalErr("evaluation took more than %d claim tests (MaxSteps)", ev.lim.MaxSteps)
	}
	if ev.steps&0xfff == 0 {
		// Checking the context costs a lock in some implementations; every few thousand tests is
		// often enough to stop within microseconds.
		if err := ev.ctx.Err(); err != nil {
			return false, nil, false, &EvalError{Line: ev.cur.line, Column: ev.cur.col, Msg: "evaluation stopped: " + err.Error(), err: err}
		}
	}
	typ, issuer, k, live := ev.header(i)
	if !live {
		return false, nil, false, nil
	}
	nStr := len(c.tests) - c.nValue
	for ti := 0; ti < nStr; ti++ {
		t := &c.tests[ti]
		var s string
		switch t.prop {
		case pType:
			s = typ
		case pIssuer:
			s = issuer
		default:
			s = k.String()
		}
		if !cmpString(t.op, s, rhsOf(t, dyn)) {
			return false, nil, false, nil
		}
	}
	if c.nValue == 0 {
		return true, nil, false, nil
	}
	v, err := ev.valueOf(i, c.tests[nStr].pos)
	if err != nil {
		return false, nil, false, err
	}
	vts := c.tests[nStr:]
	if v.k != kSet {
		for ti := range vts {
			if !cmpValue(vts[ti].op, &v, rhsOf(&vts[ti], dyn)) {
				return false, nil, false, nil
			}
		}
		return true, nil, false, nil
	}
	memberOK := func(m *value) bool {
		for ti := range vts {
			if !cmpValue(vts[ti].op, m, rhsOf(&vts[ti], dyn)) {
				return false
			}
		}
		return true
	}
	n := 0
	for mi := range v.set {
		if memberOK(&v.set[mi]) {
			n++
		}
	}
	if n == 0 {
		return false, nil, false, nil
	}
	if n == len(v.set) || !wantFilt {
		return true, nil, false, nil
	}
	filt := make([]value, 0, n)
	for mi := range v.set {
		if memberOK(&v.set[mi]) {
			filt = append(filt, v.set[mi])
		}
	}
	return true, filt, true, nil
}

// cmpString tests a string property (type, issuer, valueType). A right-hand side of another type
// never matches, for == and != alike; a Set on the right means membership.
func cmpString(o op, s string, rhs *value) bool {
	var eq bool
	switch rhs.k {
	case kString:
		eq = s == rhs.s
	case kSet:
		for i := range rhs.set {
			if m := &rhs.set[i]; m.k == kString && m.s == s {
				eq = true
				break
			}
		}
	default:
		return false
	}
	switch o {
	case opEq:
		return eq
	case opNe:
		return !eq
	}
	return false
}

// cmpValue tests a claim value (never a Set) against a right-hand side. Values of different types
// never match, whatever the operator, so != cannot be satisfied by a type mismatch; ordering is
// defined for Integers only. A Set on the right means membership (== in, != not in).
func cmpValue(o op, a, rhs *value) bool {
	switch rhs.k {
	case kNone:
		return false
	case kSet:
		eq := false
		for i := range rhs.set {
			if eqScalar(*a, rhs.set[i]) {
				eq = true
				break
			}
		}
		switch o {
		case opEq:
			return eq
		case opNe:
			return !eq
		}
		return false
	}
	if a.k != rhs.k {
		return false
	}
	switch o {
	case opEq:
		return eqScalar(*a, *rhs)
	case opNe:
		return !eqScalar(*a, *rhs)
	}
	if a.k != kInt {
		return false
	}
	switch o {
	case opLt:
		return a.n < rhs.n
	case opLe:
		return a.n <= rhs.n
	case opGt:
		return a.n > rhs.n
	}
	return a.n >= rhs.n
}

func (ev *evaluator) eval(e *expr) (value, *EvalError) {
	switch e.kind {
	case eLit:
		return e.lit, nil
	case eRef:
		return ev.ref(e)
	}
	var argv [2]value
	for i, a := range e.args {
		v, err := ev.eval(a)
		if err != nil {
			return value{}, err
		}
		argv[i] = v
	}
	return ev.call(e, argv[:len(e.args)])
}

func (ev *evaluator) ref(e *expr) (value, *EvalError) {
	b := ev.bind(e.slot)
	if !e.agg {
		return ev.propOf(b.idx, b.filtered, b.filt, e.prop, e.pos)
	}
	var set []value
	for _, r := range b.agg {
		v, err := ev.propOf(r.idx, r.filtered, r.filt, e.prop, e.pos)
		if err != nil {
			return value{}, err
		}
		set = append(set, members(&v)...)
		if len(set) > ev.lim.MaxClaims {
			return value{}, e.evalErr("set of more than %d values (MaxClaims)", ev.lim.MaxClaims)
		}
	}
	return value{k: kSet, set: set}, nil
}

func (ev *evaluator) propOf(idx int, filtered bool, filt []value, pr prop, at pos) (value, *EvalError) {
	if pr != pValue {
		typ, issuer, k, _ := ev.header(idx)
		switch pr {
		case pType:
			return strVal(typ), nil
		case pIssuer:
			return strVal(issuer), nil
		}
		return strVal(k.String()), nil
	}
	if filtered {
		return value{k: kSet, set: filt}, nil
	}
	return ev.valueOf(idx, at)
}

func (ev *evaluator) fire(r *rule) *EvalError {
	a := &r.act
	switch a.kind {
	case aPermit:
		ev.permit = true
		return nil
	case aDeny:
		ev.denied = a
		ev.stop = true
		return nil
	case aProp:
		return ev.setProperty(a)
	}
	var nc wclaim
	if a.claimSlot >= 0 {
		b := ev.bind(a.claimSlot)
		typ, issuer, _, _ := ev.header(b.idx)
		v, err := ev.propOf(b.idx, b.filtered, b.filt, pValue, a.pos)
		if err != nil {
			return err
		}
		nc = wclaim{typ: typ, issuer: issuer, v: v}
	} else {
		t, err := ev.claimType(a)
		if err != nil {
			return err
		}
		v, err := ev.eval(a.val)
		if err != nil {
			return err
		}
		if v.k == kNone {
			// JsonToClaimValue(null): MAA defines adding or issuing an empty claim as a no-op.
			return nil
		}
		if a.vtype != kNone && v.k != a.vtype {
			return a.val.evalErr("value is %s but valueType says %s", v.k, a.vtype)
		}
		iss := IssuerPolicy
		if a.issuer != nil {
			iv, err := ev.eval(a.issuer)
			if err != nil {
				return err
			}
			iv, err = single(iv, a.issuer.pos, "issuer")
			if err != nil {
				return err
			}
			if iv.k != kString || !issuableIssuer(iv.s) {
				return a.issuer.evalErr("issuer must be %q or %q", IssuerPolicy, IssuerCustom)
			}
			iss = iv.s
		}
		nc = wclaim{typ: t, issuer: iss, v: v}
	}
	if err := ev.push(nc, a); err != nil {
		return err
	}
	if a.kind == aIssue {
		ev.out = append(ev.out, Claim{Type: nc.typ, Value: nc.v.out(), Issuer: nc.issuer})
	}
	return nil
}

// push adds a claim to the working set. A claim no later rule can match (a.hidden, decided at
// compile time) is only counted: storing it would change nothing but the cost.
func (ev *evaluator) push(c wclaim, a *action) *EvalError {
	if ev.nclaim >= ev.lim.MaxClaims {
		return a.evalErr("working claim set grew beyond %d claims (MaxClaims)", ev.lim.MaxClaims)
	}
	ev.nclaim++
	if !a.hidden {
		if ev.added == nil {
			ev.added = make([]wclaim, 0, min(ev.p.nAdd, 64))
		}
		ev.added = append(ev.added, c)
	}
	return nil
}

func (ev *evaluator) claimType(a *action) (string, *EvalError) {
	tv, err := ev.eval(a.typ)
	if err != nil {
		return "", err
	}
	tv, err = single(tv, a.typ.pos, "type")
	if err != nil {
		return "", err
	}
	if tv.k != kString || tv.s == "" {
		return "", a.typ.evalErr("a claim type must be a non-empty String, found %s", describeValue(tv))
	}
	return tv.s, nil
}

// setProperty runs issueproperty: MAA adds the claim to the property set and to the incoming set.
func (ev *evaluator) setProperty(a *action) *EvalError {
	name, err := ev.claimType(a)
	if err != nil {
		return err
	}
	spec := propertyByName(name)
	if spec == nil {
		return a.typ.evalErr("unknown property %s; the properties are %s", quoteShort(name), propertyNames)
	}
	v, err := ev.eval(a.val)
	if err != nil {
		return err
	}
	if v.k == kNone {
		return nil
	}
	v, err = single(v, a.val.pos, "value")
	if err != nil {
		return err
	}
	if msg := spec.check(v); msg != "" {
		return a.val.evalErr("%s", msg)
	}
	if ev.props == nil {
		ev.props = make(map[string]any, 2)
	}
	ev.props[name] = v.out()
	return ev.push(wclaim{typ: name, issuer: IssuerPolicy, v: v}, a)
}

// single turns a one-member Set into its member, where a single value is required.
func single(v value, at pos, what string) (value, *EvalError) {
	if v.k != kSet {
		return v, nil
	}
	if len(v.set) == 1 {
		return v.set[0], nil
	}
	return value{}, at.evalErr("%s must be a single value, found a Set of %d values", what, len(v.set))
}

func describeValue(v value) string {
	switch v.k {
	case kNone:
		return "no value"
	case kSet:
		return fmt.Sprintf("a Set of %d values", len(v.set))
	case kString:
		return "String " + quoteShort(v.s)
	case kInt:
		return fmt.Sprintf("Integer %d", v.n)
	}
	return fmt.Sprintf("Boolean %t", v.b())
}

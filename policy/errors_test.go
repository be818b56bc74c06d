package policy

import (
	"strings"
	"testing"
)

const okAuth = "authorizationrules { => permit(); };"

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		text      string
		kind      string
		line, col int
		msg       string // substring of Msg
	}{
		// ---- syntax
		{"missing semicolon after rule", "version=1.0;\nauthorizationrules {\n  => permit()}\n;", KindSyntax, 3, 14, `expected ";" after rule, found "}"`},
		{"missing version", "authorizationrules { => permit(); };", KindSyntax, 1, 1, `expected "version" at the start of the policy, found "authorizationrules"`},
		{"empty policy", "", KindSyntax, 1, 1, `expected "version" at the start of the policy, found end of policy`},
		{"version without minor", "version=1;" + okAuth, KindSyntax, 1, 9, "MAJOR.MINOR"},
		{"version missing =", "version 1.0;" + okAuth, KindSyntax, 1, 9, `expected "=" after "version", found number 1.0`},
		{"version missing ;", "version=1.0\n" + okAuth, KindSyntax, 2, 1, `expected ";" after the version, found "authorizationrules"`},
		{"unknown section", "version=1.0;\nauthorisationrules { };", KindSyntax, 2, 1, `expected a section (configurationrules, authorizationrules or issuancerules), found "authorisationrules"`},
		{"duplicate section", "version=1.0;" + okAuth + "\nauthorizationrules { };", KindSyntax, 2, 1, "duplicate authorizationrules section"},
		{"sections out of order", "version=1.1;issuancerules { };\nauthorizationrules { };", KindSyntax, 2, 1, "authorizationrules must come before issuancerules"},
		{"missing brace", "version=1.0;authorizationrules => permit(); };", KindSyntax, 1, 32, `expected "{" after authorizationrules, found "=>"`},
		{"missing authorizationrules", "version=1.0;issuancerules { };", KindSyntax, 1, 31, "expected an authorizationrules section, found end of policy"},
		{"unclosed section", "version=1.0;authorizationrules { => permit();", KindSyntax, 1, 46, `expected a rule or "}", found end of policy`},
		{"unterminated string", "version=1.0;authorizationrules {\n [type==\"abc] => permit(); };", KindSyntax, 2, 9, "unterminated string"},
		{"unknown escape", "version=1.0;authorizationrules { [type==\"a\\qb\"] => permit(); };", KindSyntax, 1, 43, `unknown escape sequence \q`},
		{"bad unicode escape", "version=1.0;authorizationrules { [type==\"\\u12\"] => permit(); };", KindSyntax, 1, 42, `invalid \u escape`},
		{"single = in condition", "version=1.0;authorizationrules { [type=\"x\"] => permit(); };", KindSyntax, 1, 39, `found "="; use "==" to compare`},
		{"regex operator", "version=1.0;authorizationrules { [type=~\"x\"] => permit(); };", KindSyntax, 1, 39, "regular-expression operators"},
		{"or operator", "version=1.0;authorizationrules { [type==\"x\"] || [type==\"y\"] => permit(); };", KindSyntax, 1, 46, `"||" is not part of the policy language`},
		{"hex literal", "version=1.0;authorizationrules { [type==\"x\", value==0xFF] => permit(); };", KindSyntax, 1, 53, "hexadecimal literals are not supported"},
		{"integer overflow", "version=1.0;authorizationrules { [type==\"x\", value==99999999999999999999] => permit(); };", KindSyntax, 1, 53, "does not fit in 64 bits"},
		{"typographic quote", "version=1.0;authorizationrules { [type==\u201cx\u201d] => permit(); };", KindSyntax, 1, 41, "typographic quote"},
		{"stray character", "version=1.0;authorizationrules { [type==\"x\"] => permit(); } @", KindSyntax, 1, 61, "unexpected character '@'"},
		{"unterminated comment", "version=1.0; /* no end\n" + okAuth, KindSyntax, 1, 14, "unterminated /* comment"},
		{"empty condition", "version=1.0;authorizationrules { [] => permit(); };", KindSyntax, 1, 35, "empty condition"},
		{"trailing comma", "version=1.0;authorizationrules { [type==\"x\",] => permit(); };", KindSyntax, 1, 45, "expected a claim property (type, value, issuer or valueType), found \"]\""},
		{"missing arrow", "version=1.0;authorizationrules { [type==\"x\"] permit(); };", KindSyntax, 1, 46, `expected "&&" or "=>" after a condition, found "permit"`},
		{"missing action", "version=1.0;authorizationrules { => ; };", KindSyntax, 1, 37, `expected an action (permit, deny, add, issue or issueproperty) after "=>", found ";"`},
		{"permit with argument", "version=1.0;authorizationrules { => permit(1); };", KindSyntax, 1, 44, "permit() takes no arguments"},
		{"unknown property in test", "version=1.0;authorizationrules { [name==\"x\"] => permit(); };", KindSyntax, 1, 35, `expected a claim property (type, value, issuer or valueType), found "name"`},
		{"missing expression", "version=1.0;authorizationrules { [type==] => permit(); };", KindSyntax, 1, 41, `expected an expression`},
		{"fraction", "version=1.0;authorizationrules { [type==\"x\", value==1.5] => permit(); };", KindSemantic, 1, 53, "fractional numbers are not supported"},
		{"bare identifier", "version=1.0;authorizationrules { c:[type==\"x\"] => permit(); }; issuancerules { c:[type==\"x\"] => issue(type=\"y\", value=c); };", KindSyntax, 1, 120, `expected "." and a property after identifier "c", found ")"`},
		{"parenthesised expression", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=((true))); };", KindSyntax, 1, 90, "expected an expression"},
		{"repeated not", "version=1.2;authorizationrules { !![type==\"x\"] => permit(); };", KindSyntax, 1, 35, `expected "[" to start a condition, found "!"`},
		{"bad JmesPath query", "version=1.2;" + okAuth + "issuancerules {\n c:[type==\"x\"] => issue(type=\"y\", value=JmesPath(c.value, \"a[?\"));\n};", KindSyntax, 2, 59, "JmesPath: invalid query"},

		// ---- semantic
		{"unsupported version", "version=2.0;" + okAuth, KindSemantic, 1, 9, "unsupported policy version 2.0; supported versions are 1.0, 1.1 and 1.2"},
		{"version 1.3", "version=1.3;" + okAuth, KindSemantic, 1, 9, "unsupported policy version 1.3"},
		{"unknown function", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=Base64Decode(\"x\")); };", KindSemantic, 1, 90, `unknown function "Base64Decode"`},
		{"doc typo NegateBol", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=NegateBol(true)); };", KindSemantic, 1, 90, `unknown function "NegateBol"`},
		{"arity too few", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=JmesPath(\"{}\")); };", KindSemantic, 1, 90, "JmesPath takes 2 arguments, found 1"},
		{"arity too many", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=NegateBool(true, false)); };", KindSemantic, 1, 107, "NegateBool takes 1 argument, found more"},
		{"arity zero", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=ContainsOnlyValue()); };", KindSemantic, 1, 90, "ContainsOnlyValue takes 2 arguments, found 0"},
		{"type error NegateBool", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=NegateBool(\"true\")); };", KindSemantic, 1, 101, "NegateBool: argument 1 must be a Boolean, found a String"},
		{"type error AppendString", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=AppendString(1, \"a\")); };", KindSemantic, 1, 103, "AppendString: argument 1 must be a String, found an Integer"},
		{"type error JmesPath", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=JmesPath(\"{}\", true)); };", KindSemantic, 1, 105, "JmesPath: argument 2 must be a String, found a Boolean"},
		{"empty JmesPath query", "version=1.2;" + okAuth + "issuancerules { c:[type==\"x\"] => issue(type=\"y\", value=JmesPath(c.value, \"\")); };", KindSemantic, 1, 122, "JmesPath: argument 2 must not be empty"},
		{"constant JsonToClaimValue object", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=JsonToClaimValue(\"{}\")); };", KindSemantic, 1, 90, "JsonToClaimValue: JSON objects cannot be converted"},
		{"constant JsonToClaimValue fraction", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=JsonToClaimValue(\"1.5\")); };", KindSemantic, 1, 90, "number 1.5 is not an integer"},
		{"constant NegateBool of set", "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value=NegateBool(JsonToClaimValue(\"[true, false]\"))); };", KindSemantic, 1, 90, "must be a single value, found a Set of 2 values"},
		{"ordering on string literal", "version=1.0;authorizationrules { [type==\"x\", value<\"abc\"] => permit(); };", KindSemantic, 1, 52, "operator < needs an Integer operand, found String"},
		{"ordering on boolean literal", "version=1.0;authorizationrules { [type==\"x\", value>=true] => permit(); };", KindSemantic, 1, 53, "operator >= needs an Integer operand, found Boolean"},
		{"ordering on type", "version=1.0;authorizationrules { [type<\"x\"] => permit(); };", KindSemantic, 1, 39, "operator < cannot be applied to type"},
		{"type compared with integer", "version=1.0;authorizationrules { [type==5] => permit(); };", KindSemantic, 1, 41, "type is a String and can never equal an Integer"},
		{"unknown valueType", "version=1.0;authorizationrules { [valueType==\"Int\"] => permit(); };", KindSemantic, 1, 46, `unknown valueType "Int"`},
		{"unknown issuer", "version=1.0;authorizationrules { [issuer==\"AttestationServices\"] => permit(); };", KindSemantic, 1, 43, `unknown issuer "AttestationServices"`},
		{"issue in authorizationrules", "version=1.0;authorizationrules { => issue(type=\"x\", value=1); };", KindSemantic, 1, 37, "issue() is not allowed in authorizationrules; it may only appear in issuancerules"},
		{"permit in issuancerules", "version=1.0;" + okAuth + " issuancerules { => permit(); };", KindSemantic, 1, 69, "permit() is not allowed in issuancerules"},
		{"deny in configurationrules", "version=1.1;configurationrules { => deny(); };" + okAuth, KindSemantic, 1, 37, "deny() is not allowed in configurationrules"},
		{"add in configurationrules", "version=1.1;configurationrules { => add(type=\"x\", value=1); };" + okAuth, KindSemantic, 1, 37, "add() is not allowed in configurationrules"},
		{"issueproperty in authorizationrules", "version=1.1;authorizationrules { => issueproperty(type=\"omit_x5c\", value=true); };", KindSemantic, 1, 37, "issueproperty() is not allowed in authorizationrules"},
		{"configurationrules in 1.0", "version=1.0;configurationrules { };" + okAuth, KindSemantic, 1, 13, "configurationrules requires policy version 1.1 or later; this policy declares version 1.0"},
		{"not in 1.1", "version=1.1;authorizationrules { ![type==\"x\"] => permit(); };", KindSemantic, 1, 34, `the "!" (not) condition requires policy version 1.2; this policy declares version 1.1`},
		{"function in 1.0", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", value=NegateBool(true)); };", KindSemantic, 1, 90, "function NegateBool requires policy version 1.2; this policy declares version 1.0"},
		{"undefined identifier", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", value=c.value); };", KindSemantic, 1, 90, `undefined identifier "c"`},
		{"identifier from another rule", "version=1.0;" + okAuth + "issuancerules { c:[type==\"x\"] => issue(type=\"y\", value=1);\n[type==\"z\"] => issue(type=\"y\", value=c.value); };", KindSemantic, 2, 38, `undefined identifier "c"`},
		{"self reference", "version=1.0;authorizationrules { c:[type==\"x\", value==c.value] => permit(); };", KindSemantic, 1, 55, `undefined identifier "c"`},
		{"undefined claim=", "version=1.0;" + okAuth + "issuancerules { c:[type==\"x\"] => issue(claim=d); };", KindSemantic, 1, 94, `undefined identifier "d"`},
		{"bare undefined word", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", value=yes); };", KindSemantic, 1, 90, `undefined identifier "yes"`},
		{"unknown property", "version=1.0;" + okAuth + "issuancerules { c:[type==\"x\"] => issue(type=\"y\", value=c.name); };", KindSemantic, 1, 106, `unknown property "name"`},
		{"duplicate identifier", "version=1.0;authorizationrules { c:[type==\"x\"] && c:[type==\"y\"] => permit(); };", KindSemantic, 1, 51, `identifier "c" is already bound in this rule`},
		{"negated identifier", "version=1.2;authorizationrules { !c:[type==\"x\"] => permit(); };", KindSemantic, 1, 35, "a negated condition matches no claim, so it cannot bind an identifier"},
		{"unknown action", "version=1.0;authorizationrules { => allow(); };", KindSemantic, 1, 37, `unknown action "allow"`},
		{"missing value", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\"); };", KindSemantic, 1, 68, "issue needs a value= argument"},
		{"no arguments", "version=1.0;" + okAuth + "issuancerules { => add(); };", KindSemantic, 1, 72, "add needs type= and value= arguments"},
		{"unknown argument", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", val=1); };", KindSemantic, 1, 84, `unknown argument "val"`},
		{"duplicate argument", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", type=\"z\", value=1); };", KindSemantic, 1, 84, "argument type given twice"},
		{"claim with other arguments", "version=1.0;" + okAuth + "issuancerules { c:[type==\"x\"] => issue(claim=c, value=1); };", KindSemantic, 1, 82, "issue(claim=...) takes no other arguments"},
		{"empty claim type", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"\", value=1); };", KindSemantic, 1, 79, "a claim type must not be empty"},
		{"integer claim type", "version=1.0;" + okAuth + "issuancerules { => issue(type=5, value=1); };", KindSemantic, 1, 79, "a claim type must be a String, found an Integer"},
		{"valueType mismatch", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", value=1, valueType=\"String\"); };", KindSemantic, 1, 90, "value is an Integer but valueType says String"},
		{"unknown valueType argument", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", value=1, valueType=\"Number\"); };", KindSemantic, 1, 103, `unknown valueType "Number"`},
		{"forged issuer", "version=1.0;" + okAuth + "issuancerules { => issue(type=\"y\", value=1, issuer=\"AttestationService\"); };", KindSemantic, 1, 100, `issuer "AttestationService" cannot be set by a policy`},
		{"unknown property name", "version=1.1;configurationrules { => issueproperty(type=\"x-ms-sgx-tcbidentifer\", value=\"10\"); };" + okAuth, KindSemantic, 1, 56, `unknown property "x-ms-sgx-tcbidentifer"`},
		{"property wrong type", "version=1.1;configurationrules { => issueproperty(type=\"omit_x5c\", value=\"true\"); };" + okAuth, KindSemantic, 1, 74, "property omit_x5c takes a Boolean, found a String"},
		{"property out of range", "version=1.1;configurationrules { => issueproperty(type=\"report_validity_in_minutes\", value=525601); };" + okAuth, KindSemantic, 1, 92, "property report_validity_in_minutes must be between 1 and 525600, found 525601"},
		{"property mask out of range", "version=1.1;configurationrules { => issueproperty(type=\"required_pcr_mask\", value=-1); };" + okAuth, KindSemantic, 1, 83, "must be between 0 and 16777215"},
		{"property empty tcb id", "version=1.1;configurationrules { => issueproperty(type=\"x-ms-sgx-tcbidentifier\", value=\"\"); };" + okAuth, KindSemantic, 1, 88, "must not be empty"},
		{"property function type", "version=1.2;configurationrules { => issueproperty(type=\"omit_x5c\", value=AppendString(\"a\", \"b\")); };" + okAuth, KindSemantic, 1, 74, "property omit_x5c takes a Boolean, found a String"},
		{"issueproperty issuer", "version=1.1;configurationrules { => issueproperty(type=\"omit_x5c\", value=true, issuer=\"CustomClaim\"); };" + okAuth, KindSemantic, 1, 80, "issueproperty takes only type= and value="},
		{"true as identifier", "version=1.0;authorizationrules { true:[type==\"x\"] => permit(); };", KindSemantic, 1, 34, "true cannot be used as an identifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.text)
			if err == nil {
				t.Fatalf("compiled:\n%s", tc.text)
			}
			e := asError(t, err)
			if e.Kind != tc.kind || e.Line != tc.line || e.Column != tc.col || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("got  %s %q\nwant %s line %d, column %d: ...%s...", e.Kind, e.Error(), tc.kind, tc.line, tc.col, tc.msg)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	_, err := Compile("version=1.0;\nauthorizationrules {\n  => permit()}\n;")
	if got, want := err.Error(), `line 3, column 14: expected ";" after rule, found "}"`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	// Columns count characters, not bytes.
	_, err = Compile("version=1.0;authorizationrules { [type==\"é€\"] && => permit(); };")
	if e := asError(t, err); e.Column != 50 {
		t.Fatalf("error %v", err)
	}
}

func TestLimitErrors(t *testing.T) {
	const head = "version=1.2;" + okAuth + "issuancerules { => issue(type=\"y\", value="
	nest := func(n int) string {
		return head + strings.Repeat("NegateBool(", n) + "true" + strings.Repeat(")", n) + "); };"
	}
	for _, tc := range []struct {
		name      string
		text      string
		lim       Limits
		kind      string
		line, col int
		msg       string
	}{
		{"text too large", "version=1.0;" + okAuth + strings.Repeat(" ", 64<<10), Limits{}, KindLimit, 1, 65537, "policy text is 65584 bytes, more than the limit of 65536"},
		{"text too large, small limit", "version=1.0;\n" + okAuth, Limits{MaxTextBytes: 20}, KindLimit, 2, 8, "more than the limit of 20"},
		{"10000 nested calls", nest(10000), Limits{MaxTextBytes: 1 << 20}, KindLimit, 1, 266, "function calls nested more than 16 deep"},
		{"10000 nested calls, default limits", nest(10000), Limits{}, KindLimit, 1, 65537, "policy text is"},
		{"17 nested calls", nest(17), Limits{}, KindLimit, 1, 266, "function calls nested more than 16 deep"},
		{"MaxDepth 2", nest(3), Limits{MaxDepth: 2}, KindLimit, 1, 112, "nested more than 2 deep"},
		{"too many rules", "version=1.0;authorizationrules {" + strings.Repeat("\n=> permit();", 4) + "};", Limits{MaxRules: 3}, KindLimit, 5, 1, "more than 3 rules"},
		// The grammar has no grouping parentheses and no repeated "!", so deep input of that kind
		// stops at its first character without any recursion.
		{"10000 parentheses", head + strings.Repeat("(", 10000) + "true" + strings.Repeat(")", 10000) + "); };", Limits{MaxTextBytes: 1 << 20}, KindSyntax, 1, 90, "expected an expression"},
		{"10000 nots", "version=1.2;authorizationrules {" + strings.Repeat("!", 10000) + "[type==\"x\"] => permit(); };", Limits{MaxTextBytes: 1 << 20}, KindSyntax, 1, 34, `expected "[" to start a condition, found "!"`},
		{"10000 brackets", "version=1.2;authorizationrules {" + strings.Repeat("[", 10000) + "};", Limits{MaxTextBytes: 1 << 20}, KindSyntax, 1, 34, "expected a claim property"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileWithLimits(tc.text, tc.lim)
			if err == nil {
				t.Fatal("compiled")
			}
			e := asError(t, err)
			if e.Kind != tc.kind || e.Line != tc.line || e.Column != tc.col || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("got  %s %q\nwant %s line %d, column %d: ...%s...", e.Kind, e.Error(), tc.kind, tc.line, tc.col, tc.msg)
			}
		})
	}
	if _, err := Compile(nest(16)); err != nil {
		t.Fatalf("16 nested calls: %v", err)
	}
}

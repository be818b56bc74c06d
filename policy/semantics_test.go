package policy

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// typedClaims has one claim of every value kind.
func typedClaims() []Claim {
	return []Claim{
		{Type: "i", Value: 5},
		{Type: "neg", Value: int64(-5)},
		{Type: "s", Value: "abc"},
		{Type: "b", Value: true},
		{Type: "set", Value: []string{"a", "b"}},
		{Type: "mixed", Value: []any{1, "x", true, nil}},
		{Type: "empty", Value: []string{}},
		{Type: "json", Value: map[string]any{"k": 1, "s": "<&>"}},
		{Type: "num", Value: json.Number("7")},
		{Type: "frac", Value: json.Number("7.5")},
		{Type: "big", Value: uint64(math.MaxUint64)},
		{Type: "u8", Value: uint8(200)},
		{Type: "flt", Value: 2.0},
		{Type: "nested", Value: []any{[]any{1}}},
		{Type: "nil", Value: nil},
		{Type: "cc", Value: "client", Issuer: IssuerCustom},
		{Type: "struct", Value: collateral{QuoteHash: "ab", TCBInfoHash: "cd"}},
	}
}

// TestConditions checks each operator on each value type: a condition list either permits or not.
func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		cond string
		want bool
	}{
		{`[type=="i", value==5]`, true},
		{`[type=="i", value==6]`, false},
		{`[type=="i", value!=6]`, true},
		{`[type=="i", value!=5]`, false},
		{`[type=="i", value<6]`, true},
		{`[type=="i", value<5]`, false},
		{`[type=="i", value<=5]`, true},
		{`[type=="i", value<=4]`, false},
		{`[type=="i", value>4]`, true},
		{`[type=="i", value>5]`, false},
		{`[type=="i", value>=5]`, true},
		{`[type=="i", value>=6]`, false},
		{`[type=="i", value>=1, value<=9]`, true},
		{`[type=="neg", value==-5]`, true},
		{`[type=="neg", value<0]`, true},
		// A test on a value of another type never matches, for == and != alike.
		{`[type=="i", value=="5"]`, false},
		{`[type=="i", value!="5"]`, false},
		{`[type=="i", value!=true]`, false},
		{`[type=="s", value=="abc"]`, true},
		{`[type=="s", value=="ABC"]`, false},
		{`[type=="s", value=="abc "]`, false},
		{`[type=="s", value!="abd"]`, true},
		{`[type=="s", value!="abc"]`, false},
		{`[type=="s", value!=5]`, false},
		{`[type=="s", value>=0]`, false},
		{`[type=="b", value==true]`, true},
		{`[type=="b", value==false]`, false},
		{`[type=="b", value!=false]`, true},
		{`[type=="b", value!="true"]`, false},
		{`[type=="b", value==1]`, false},
		// A set behaves as several claims of one type: a test holds if one member satisfies it.
		{`[type=="set", value=="a"]`, true},
		{`[type=="set", value=="c"]`, false},
		{`[type=="set", value!="a"]`, true},
		{`[type=="set", value=="a", value=="b"]`, false},
		{`[type=="set", valueType=="Set"]`, true},
		{`[type=="mixed", value==1]`, true},
		{`[type=="mixed", value==true]`, true},
		{`[type=="mixed", value>0, value<2]`, true},
		// An empty set stands for no claims.
		{`[type=="empty"]`, false},
		{`[type=="empty", valueType=="Set"]`, false},
		// JSON values are Strings holding their JSON text.
		{`[type=="json", valueType=="String"]`, true},
		{`[type=="json", value=="{\"k\":1,\"s\":\"<&>\"}"]`, true},
		{`[type=="num", value==7]`, true},
		{`[type=="num", valueType=="Integer"]`, true},
		{`[type=="frac", value=="7.5"]`, true},
		{`[type=="big", value=="18446744073709551615"]`, true},
		{`[type=="u8", value==200]`, true},
		{`[type=="flt", value=="2"]`, true},
		{`[type=="flt", value==2]`, false},
		{`[type=="nested", valueType=="String"]`, true},
		{`[type=="struct", value=="{\"qeidcertshash\":\"\",\"qeidcrlhash\":\"\",\"qeidhash\":\"\",\"quotehash\":\"ab\",\"tcbinfocertshash\":\"\",\"tcbinfocrlhash\":\"\",\"tcbinfohash\":\"cd\"}"]`, true},
		{`[type=="nil"]`, false},
		{`[type=="i", valueType=="Integer"]`, true},
		{`[type=="s", valueType=="String"]`, true},
		{`[type=="b", valueType=="Boolean"]`, true},
		{`[type=="b", valueType!="Boolean"]`, false},
		{`[type=="i", issuer=="AttestationService"]`, true},
		{`[type=="cc", issuer=="CustomClaim"]`, true},
		{`[type=="cc", issuer!="AttestationService"]`, true},
		{`[type!="i", type=="s"]`, true},
		{`[value=="abc"]`, true},
		{`[type=="I"]`, false},
		// Keywords and property names are case-insensitive; values are not.
		{`[Type=="i", Value==5, ValueType=="Integer", ISSUER=="AttestationService"]`, true},
		{`[type=="i"] && [type=="s"]`, true},
		{`[type=="i"] && [type=="nope"]`, false},
		{`![type=="nope"]`, true},
		{`![type=="i"]`, false},
		{`![type=="i", value==6]`, true},
		{`[type=="i"] && ![type=="s", value=="x"]`, true},
		{`![type=="empty"]`, true},
		{`![type=="nil"]`, true},
	} {
		text := "version=1.2; authorizationrules { " + tc.cond + " => permit(); };"
		p, err := Compile(text)
		if err != nil {
			t.Errorf("%s: %v", tc.cond, err)
			continue
		}
		d := mustEval(t, p, typedClaims())
		if d.Permit != tc.want {
			t.Errorf("%s: permit = %v, want %v", tc.cond, d.Permit, tc.want)
		}
	}
}

// run12 evaluates a 1.2 policy whose issuancerules are body, over in.
func run12(t *testing.T, body string, in []Claim) (*Decision, error) {
	t.Helper()
	p, err := Compile("version=1.2; authorizationrules { => permit(); }; issuancerules {\n" + body + "\n};")
	if err != nil {
		t.Fatalf("Compile: %v\n%s", err, body)
	}
	return p.Evaluate(context.Background(), in)
}

func TestFunctions(t *testing.T) {
	runtime := sgxClaims()[16:]
	jsonClaims := []Claim{
		{Type: "JsonData", Value: `{"values": [0,1,2,3,4]}`},
		{Type: "JmesPathQuery", Value: "values[2]"},
		{Type: "JsonIntegerData", Value: "100"},
		{Type: "JsonBooleanData", Value: "true"},
		{Type: "JsonStringData", Value: `"abc"`},
		{Type: "JsonArray", Value: `[0, "abc", true]`},
		{Type: "JsonNull", Value: "null"},
		{Type: "JsonFraction", Value: "1.5"},
		{Type: "JsonObject", Value: `{"a":1}`},
		{Type: "Int", Value: 7},
		{Type: "BadQuery", Value: "values[?"},
		{Type: "Input", Value: true},
		{Type: "String1", Value: "abc"},
		{Type: "String2", Value: "xyz"},
		{Type: "Subset", Value: "abc"},
		{Type: "Subset", Value: 100},
		{Type: "Superset", Value: true},
		{Type: "Superset", Value: "abc"},
		{Type: "Superset", Value: 100},
		{Type: "Set", Value: 100},
		{Type: "Set", Value: 101},
		{Type: "Same", Value: 100},
		{Type: "Same", Value: 100},
		{Type: "Events", Value: tcgEvents("AQ")},
	}
	jsonClaims = append(jsonClaims, runtime...)
	jsonClaims = append(jsonClaims, sgxClaims()[11])
	for _, tc := range []struct {
		name, rule string
		want       any    // the value of claim "r"; nil: not issued
		err        string // EvalError substring
	}{
		{"JmesPath literal", `=> issue(type="r", value=JmesPath("{\"foo\": \"bar\"}", "foo"));`, `"bar"`, ""},
		{"JmesPath claims", `c1:[type=="JsonData"] && c2:[type=="JmesPathQuery"] => issue(type="r", value=JmesPath(c1.value, c2.value));`, "2", ""},
		{"JmesPath object", `c:[type=="JsonData"] => issue(type="r", value=JmesPath(c.value, "@"));`, `{"values":[0,1,2,3,4]}`, ""},
		{"JmesPath float", `=> issue(type="r", value=JmesPath("[1.5, 1e300, 0.0000001]", "@"));`, `[1.5,1e+300,1e-7]`, ""},
		{"JmesPath string escapes", `=> issue(type="r", value=JmesPath("{\"a\":\"<\\n\\u2028>\"}", "a"));`, `"<\n\u2028>"`, ""},
		{"JmesPath on JSON claim", `c:[type=="x-ms-runtime"] => issue(type="r", value=JsonToClaimValue(JmesPath(c.value, "keys[0].kid")));`, "EnclaveKey", ""},
		{"JmesPath on nested JSON", `c:[type=="x-ms-runtime"] => issue(type="r", value=JsonToClaimValue(JmesPath(c.value, "\"vm-configuration\".\"secure-boot\"")));`, true, ""},
		{"JmesPath on events", `c:[type=="Events"] => issue(type="r", value=JsonToClaimValue(JmesPath(c.value, "Events[?PcrIndex == ` + "`7`" + `].ProcessedData.UnicodeName")));`, []any{"SecureBoot", "PK"}, ""},
		{"JmesPath null result", `c:[type=="JsonData"] => issue(type="r", value=JmesPath(c.value, "missing"));`, "null", ""},
		{"JmesPath bad JSON", `c:[type=="JmesPathQuery"] => issue(type="r", value=JmesPath(c.value, "@"));`, nil, "JmesPath: argument 1 is not valid JSON"},
		{"JmesPath bad dynamic query", `c1:[type=="JsonData"] && c2:[type=="BadQuery"] => issue(type="r", value=JmesPath(c1.value, c2.value));`, nil, "JmesPath: invalid query"},
		{"JmesPath on Integer", `c:[type=="Int"] => issue(type="r", value=JmesPath(c.value, "@"));`, nil, "argument 1 must be a String, found Integer 7"},
		{"JmesPath unknown jmespath function", `c:[type=="JsonData"] => issue(type="r", value=JmesPath(c.value, "equals_ignore_case(a, 'b')"));`, nil, "JmesPath:"},
		{"JsonToClaimValue integer", `c:[type=="JsonIntegerData"] => issue(type="r", value=JsonToClaimValue(c.value));`, int64(100), ""},
		{"JsonToClaimValue boolean", `c:[type=="JsonBooleanData"] => issue(type="r", value=JsonToClaimValue(c.value));`, true, ""},
		{"JsonToClaimValue string", `c:[type=="JsonStringData"] => issue(type="r", value=JsonToClaimValue(c.value));`, "abc", ""},
		{"JsonToClaimValue array", `c:[type=="JsonArray"] => issue(type="r", value=JsonToClaimValue(c.value));`, []any{int64(0), "abc", true}, ""},
		{"JsonToClaimValue null", `c:[type=="JsonNull"] => issue(type="r", value=JsonToClaimValue(c.value));`, nil, ""},
		{"JsonToClaimValue literal", `=> issue(type="r", value=JsonToClaimValue("[1, null, 2.0, 3e2]"));`, []any{int64(1), int64(2), int64(300)}, ""},
		{"JsonToClaimValue fraction", `c:[type=="JsonFraction"] => issue(type="r", value=JsonToClaimValue(c.value));`, nil, "JsonToClaimValue: number 1.5 is not an integer"},
		{"JsonToClaimValue object", `c:[type=="JsonObject"] => issue(type="r", value=JsonToClaimValue(c.value));`, nil, "JsonToClaimValue: JSON objects cannot be converted"},
		{"JsonToClaimValue JSON claim", `c:[type=="x-ms-runtime"] => issue(type="r", value=JsonToClaimValue(c.value));`, nil, "JSON objects cannot be converted"},
		{"JsonToClaimValue invalid", `c:[type=="String1"] => issue(type="r", value=JsonToClaimValue(c.value));`, nil, "not valid JSON"},
		{"JsonToClaimValue trailing", `c:[type=="Subset", value=="abc"] => issue(type="r", value=JsonToClaimValue(AppendString("1 ", c.value)));`, nil, "not valid JSON"},
		{"JsonToClaimValue of Integer", `c:[type=="Int"] => issue(type="r", value=JsonToClaimValue(c.value));`, nil, "must be a String"},
		{"IsSubsetOf doc example", `c1:[type == "Subset"] && c2:[type=="Superset"] => issue(type="r", value=IsSubsetOf(c1.value, c2.value));`, true, ""},
		{"IsSubsetOf reversed", `c1:[type == "Subset"] && c2:[type=="Superset"] => issue(type="r", value=IsSubsetOf(c2.value, c1.value));`, false, ""},
		{"IsSubsetOf scalar", `c:[type=="Superset"] => issue(type="r", value=IsSubsetOf("abc", c.value));`, true, ""},
		{"IsSubsetOf types differ", `c:[type=="Superset"] => issue(type="r", value=IsSubsetOf("100", c.value));`, false, ""},
		{"IsSubsetOf empty", `c:[type=="Superset"] => issue(type="r", value=IsSubsetOf(JsonToClaimValue("[]"), c.value));`, true, ""},
		{"IsSubsetOf null", `c:[type=="Superset"] => issue(type="r", value=IsSubsetOf(JsonToClaimValue("null"), c.value));`, true, ""},
		{"IsSubsetOf advisories", `c:[type=="x-attestd-advisory-ids"] => issue(type="r", value=IsSubsetOf(c.value, JsonToClaimValue("[\"INTEL-SA-00615\", \"INTEL-SA-00657\"]")));`, true, ""},
		{"AppendString doc example", `c1:[type=="String1"] && c2:[type=="String2"] => issue(type="r", value=AppendString(c1.value, c2.value));`, "abcxyz", ""},
		{"AppendString empty", `=> issue(type="r", value=AppendString("", ""));`, "", ""},
		{"AppendString JSON text", `c:[type=="x-ms-runtime"] => issue(type="r", value=AppendString("", c.value));`, nil, ""},
		{"AppendString Integer", `c:[type=="Int"] => issue(type="r", value=AppendString("n", c.value));`, nil, "AppendString: argument 2 must be a String, found Integer 7"},
		{"NegateBool", `c:[type=="Input"] => issue(type="r", value=NegateBool(c.value));`, false, ""},
		{"NegateBool literal", `=> issue(type="r", value=NegateBool(false));`, true, ""},
		{"NegateBool of String", `c:[type=="String1"] => issue(type="r", value=NegateBool(c.value));`, nil, "NegateBool: argument 1 must be a Boolean"},
		{"NegateBool of one-member set", `=> issue(type="r", value=NegateBool(JsonToClaimValue("[true]")));`, false, ""},
		{"ContainsOnlyValue doc example", `c:[type=="Set"] => issue(type="r", value=ContainsOnlyValue(c.value, 100));`, false, ""},
		{"ContainsOnlyValue same", `c:[type=="Same"] => issue(type="r", value=ContainsOnlyValue(c.value, 100));`, true, ""},
		{"ContainsOnlyValue type differs", `c:[type=="Same"] => issue(type="r", value=ContainsOnlyValue(c.value, "100"));`, false, ""},
		{"ContainsOnlyValue empty", `=> issue(type="r", value=ContainsOnlyValue(JsonToClaimValue("[]"), 1));`, false, ""},
		{"ContainsOnlyValue set argument", `c:[type=="Same"] => issue(type="r", value=ContainsOnlyValue(c.value, JsonToClaimValue("[100]")));`, true, ""},
		{"ContainsOnlyValue null", `c:[type=="JsonNull"] => issue(type="r", value=ContainsOnlyValue(JsonToClaimValue("[1]"), JsonToClaimValue(c.value)));`, nil, "argument 2 has no value"},
		{"nested functions", `c:[type=="String1"] => issue(type="r", value=NegateBool(ContainsOnlyValue(JsonToClaimValue(JmesPath(AppendString("[\"", AppendString(c.value, "\"]")), "@")), "abc")));`, false, ""},
		{"function names are case-insensitive", `=> issue(type="r", value=negatebool(ISSUBSETOF(1, 1)));`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run12(t, tc.rule, jsonClaims)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error; issued %+v", d.Issued)
				}
				if e := asEvalError(t, err); !strings.Contains(e.Msg, tc.err) || e.Line == 0 {
					t.Fatalf("error %v, want %q with a position", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := issued(t, d)["r"]
			if tc.name == "AppendString JSON text" {
				if s, _ := got.(string); !strings.HasPrefix(s, `{"keys":[{"e":"AQAB"`) {
					t.Fatalf("got %#v", got)
				}
				return
			}
			if tc.want == nil {
				if ok {
					t.Fatalf("r issued as %#v, want nothing", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("r = %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestIdentifiers(t *testing.T) {
	in := []Claim{
		{Type: "a", Value: "1"}, {Type: "a", Value: "2"},
		{Type: "b", Value: "x"}, {Type: "b", Value: "y"}, {Type: "b", Value: "z"},
	}
	// Cross product: the action fires once per combination, first identifier outermost.
	d, err := run12(t, `c1:[type=="a"] && c2:[type=="b"] => issue(type="p", value=AppendString(c1.value, c2.value));`, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, c := range d.Issued {
		got = append(got, c.Value)
	}
	if want := []any{"1x", "1y", "1z", "2x", "2y", "2z"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("issued %v, want %v", got, want)
	}
	if m := d.IssuedMap(); !reflect.DeepEqual(m, map[string]any{"p": []any{"1x", "1y", "1z", "2x", "2y", "2z"}}) {
		t.Fatalf("IssuedMap %v", m)
	}
	// One identifier: once per matching claim, type and value of the same claim.
	d, _ = run12(t, `c:[value=="1"] => issue(type=c.type, value=c.value); c:[type=="b", value!="y"] => issue(claim=c);`, in)
	if want := []Claim{{"a", "1", IssuerPolicy}, {"b", "x", IssuerService}, {"b", "z", IssuerService}}; !reflect.DeepEqual(d.Issued, want) {
		t.Fatalf("issued %+v", d.Issued)
	}
	// An unused identifier is only an existence test: the rule fires once.
	d, _ = run12(t, `c:[type=="b"] => issue(type="seen", value=true);`, in)
	if len(d.Issued) != 1 {
		t.Fatalf("issued %+v", d.Issued)
	}
	// A later condition can use an earlier identifier.
	d, _ = run12(t, `c1:[type=="a"] && c2:[type=="a", value!=c1.value] => issue(type="pair", value=AppendString(c1.value, c2.value));`, in)
	if got := d.IssuedMap()["pair"]; !reflect.DeepEqual(got, []any{"12", "21"}) {
		t.Fatalf("pair = %v", got)
	}
	// c.issuer and c.valueType.
	d, _ = run12(t, `c:[type=="a", value=="2"] => issue(type="iss", value=c.issuer); c:[type=="a", value=="2"] => issue(type="vt", value=c.valueType);`, in)
	wantIssued(t, d, map[string]any{"iss": IssuerService, "vt": "String"})
	// Set claims: c.value is what the condition selected.
	sets := []Claim{{Type: "s", Value: []string{"a", "b", "c"}}}
	d, _ = run12(t, `c:[type=="s"] => issue(type="all", value=c.value); c:[type=="s", value!="b"] => issue(type="some", value=c.value); c:[type=="s", value=="b"] => issue(claim=c);`, sets)
	wantIssued(t, d, map[string]any{"all": []any{"a", "b", "c"}, "some": []any{"a", "c"}, "s": []any{"b"}})
	// MaxBindingsPerRule bounds the combinations.
	p, err := CompileWithLimits(`version=1.2; authorizationrules { => permit(); }; issuancerules {
c1:[type=="a"] && c2:[type=="b"] => issue(type="p", value=AppendString(c1.value, c2.value)); };`, Limits{MaxBindingsPerRule: 5})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Evaluate(context.Background(), in)
	if e := asEvalError(t, err); !strings.Contains(e.Msg, "MaxBindingsPerRule") || e.Line != 2 || e.Column != 1 {
		t.Fatalf("error %v", err)
	}
}

func TestAddIssueVisibility(t *testing.T) {
	in := []Claim{{Type: "x", Value: 1}}
	d, err := Compile(`version=1.0;
authorizationrules {
  [type=="x"] => add(type="fromAuth", value="a");
  [type=="fromAuth", issuer=="AttestationPolicy"] => permit();
};
issuancerules {
  c:[type=="x"] => add(type="x", value=2);
  c:[type=="x"] => issue(type="seen", value=c.value);
  [type=="fromAuth"] => add(type="added", value=true);
  [type=="added", value==true] => issue(type="issued", value="i");
  [type=="issued", issuer=="AttestationPolicy"] => issue(type="sawIssued", value=true);
  [type=="seen"] => issue(type="custom", value=1, issuer="CustomClaim", valueType="Integer");
};`)
	if err != nil {
		t.Fatal(err)
	}
	dec := mustEval(t, d, in)
	if !dec.Permit {
		t.Fatalf("decision %+v", dec)
	}
	// add(type="x") does not feed its own rule, so x ends up with two claims and "seen" fires twice.
	want := []Claim{
		{"seen", int64(1), IssuerPolicy}, {"seen", int64(2), IssuerPolicy},
		{"issued", "i", IssuerPolicy}, {"sawIssued", true, IssuerPolicy}, {"custom", int64(1), IssuerCustom},
	}
	if !reflect.DeepEqual(dec.Issued, want) {
		t.Fatalf("issued %+v", dec.Issued)
	}
}

func TestAuthorizationResult(t *testing.T) {
	for _, tc := range []struct {
		auth   string
		permit bool
		reason string
	}{
		{"=> permit();", true, ""},
		{"=> permit(); => deny();", false, "deny() at line 1, column 51"},
		{"=> deny(); => permit();", false, "deny() at line 1, column 38"},
		{"", false, "no authorization rule permitted"},
		{`[type=="nope"] => permit();`, false, "no authorization rule permitted"},
		{`[type=="nope"] => deny(); => permit();`, true, ""},
	} {
		// The issuance rule fails if it runs: it must not run unless permitted.
		text := "version=1.2; authorizationrules { " + tc.auth + " }; issuancerules { c:[type==\"bad\"] => issue(type=\"x\", value=JmesPath(c.value, \"@\")); };"
		p, err := Compile(text)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Evaluate(context.Background(), []Claim{{Type: "bad", Value: "{"}})
		if tc.permit {
			if err == nil {
				t.Errorf("%s: issuance did not run", tc.auth)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.auth, err)
			continue
		}
		if d.Permit || d.Reason != tc.reason || d.Issued != nil {
			t.Errorf("%s: decision %+v, want reason %q", tc.auth, d, tc.reason)
		}
	}
}

func TestProperties(t *testing.T) {
	in := []Claim{{Type: "n", Value: 60}, {Type: "zero", Value: 0}, {Type: "str", Value: "x"}, {Type: "name", Value: "omit_x5c"}, {Type: "bad", Value: "nope"}}
	p := mustCompile(t, `version=1.1;
configurationrules {
  => issueproperty(type="x-ms-sgx-tcbidentifier", value="10");
  => issueproperty(type="required_pcr_mask", value=16777215);
  => issueproperty(type="require_valid_aik_cert", value=true);
};
authorizationrules { [type=="required_pcr_mask", issuer=="AttestationPolicy"] => permit(); };
issuancerules {
  c:[type=="n"] => issueproperty(type="report_validity_in_minutes", value=c.value);
  c:[type=="name"] => issueproperty(type=c.value, value=true);
  => issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault");
};`)
	d := mustEval(t, p, in)
	want := map[string]any{
		"x-ms-sgx-tcbidentifier": "azuredefault", "required_pcr_mask": int64(0xFFFFFF), "require_valid_aik_cert": true,
		"report_validity_in_minutes": int64(60), "omit_x5c": true,
	}
	if !d.Permit || !reflect.DeepEqual(d.Properties, want) {
		t.Fatalf("decision %+v", d)
	}
	for _, tc := range []struct{ rule, err string }{
		{`c:[type=="zero"] => issueproperty(type="report_validity_in_minutes", value=c.value);`, "between 1 and 525600, found 0"},
		{`c:[type=="str"] => issueproperty(type="report_validity_in_minutes", value=c.value);`, "takes an Integer, found a String"},
		{`c:[type=="bad"] => issueproperty(type=c.value, value=1);`, `unknown property "nope"`},
	} {
		_, err := run12(t, tc.rule, in)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.rule, err, tc.err)
		}
	}
}

func TestRuntimeErrors(t *testing.T) {
	in := []Claim{{Type: "s", Value: "str"}, {Type: "set", Value: []string{"a", "b"}}, {Type: "ch", Value: make(chan int)}}
	for _, tc := range []struct{ rule, err string }{
		{`c:[type=="s"] => issue(type="t", value=c.value, valueType="Integer");`, "value is String but valueType says Integer"},
		{`c:[type=="set"] => issue(type=c.value, value=1);`, "type must be a single value, found a Set of 2 values"},
		{`c:[type=="s"] => issue(type=AppendString(c.value, ""), value=1, issuer=c.value);`, `issuer must be "AttestationPolicy" or "CustomClaim"`},
		{`c:[type=="set"] => issue(type="t", value=AppendString(c.value, "x"));`, "AppendString: argument 1 must be a single value"},
		{`c:[type=="ch"] => issue(type="t", value=c.value);`, `claim "ch": value cannot be encoded as JSON`},
		{`[type=="ch", value=="x"] => issue(type="t", value=1);`, `claim "ch": value cannot be encoded as JSON`},
		{`c:[type=="s"] => issue(type=AppendString(c.value, c.value), value=JsonToClaimValue("null"));`, ""},
	} {
		_, err := run12(t, tc.rule, in)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.rule, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.rule, err, tc.err)
		}
	}
}

func TestEvaluationLimits(t *testing.T) {
	many := make([]Claim, 50)
	for i := range many {
		many[i] = Claim{Type: "x", Value: i}
	}
	lim := Limits{MaxClaims: 40}
	p, err := CompileWithLimits(`version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type=="x"] => add(type="y", value=c.value); };`, lim)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Evaluate(context.Background(), many); err == nil || !strings.Contains(err.Error(), "50 incoming claims") {
		t.Fatalf("error %v", err)
	}
	if _, err := p.Evaluate(context.Background(), many[:30]); err == nil || !strings.Contains(err.Error(), "MaxClaims") {
		t.Fatalf("error %v", err)
	}
	if d, err := p.Evaluate(context.Background(), many[:20]); err != nil || !d.Permit {
		t.Fatalf("decision %+v, %v", d, err)
	}

	// Conditions that never fire still cost: MaxSteps bounds them.
	var b strings.Builder
	b.WriteString("version=1.0; authorizationrules {")
	for i := 0; i < 200; i++ {
		b.WriteString(`c1:[type=="x"] && c2:[type=="x", value==c1.value] && [type=="nope"] => permit();`)
	}
	b.WriteString("};")
	p, err = CompileWithLimits(b.String(), Limits{MaxSteps: 100000, MaxBindingsPerRule: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Evaluate(context.Background(), many); err == nil || !strings.Contains(err.Error(), "MaxSteps") {
		t.Fatalf("error %v", err)
	}

	// A JmesPath result larger than MaxValueBytes.
	p, err = CompileWithLimits(`version=1.2; authorizationrules { => permit(); }; issuancerules {
c:[type=="j"] => issue(type="r", value=JmesPath(c.value, "{a:@,b:@,c:{a:@,b:@,c:{a:@,b:@,c:{a:@,b:@}}}}")); };`, Limits{MaxValueBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	big := map[string]any{"data": strings.Repeat("x", 1000)}
	if _, err := p.Evaluate(context.Background(), []Claim{{Type: "j", Value: big}}); err == nil || !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Fatalf("error %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	p := mustCompile(t, defaultSGX)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Evaluate(ctx, sgxClaims())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	asEvalError(t, err)
}

func TestConcurrentEvaluate(t *testing.T) {
	p := mustCompile(t, benchCustomPolicy)
	in := benchCustomClaims()
	want := mustEval(t, p, in)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d, err := p.Evaluate(context.Background(), in)
				if err != nil || !reflect.DeepEqual(d, want) {
					t.Errorf("decision %+v, %v", d, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		version string
		body    string
		ok      bool
	}{
		{"1.0", `authorizationrules { => permit(); };`, true},
		{"1.1", `configurationrules { }; authorizationrules { => permit(); };`, true},
		{"1.0", `configurationrules { }; authorizationrules { => permit(); };`, false},
		{"1.1", `authorizationrules { ![type=="x"] => permit(); };`, false},
		{"1.2", `authorizationrules { ![type=="x"] => permit(); };`, true},
		{"1.1", `authorizationrules { => permit(); }; issuancerules { => issue(type="x", value=NegateBool(true)); };`, false},
		{"1.2", `authorizationrules { => permit(); }; issuancerules { => issue(type="x", value=NegateBool(true)); };`, true},
	} {
		_, err := Compile("version=" + tc.version + ";" + tc.body)
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: %v", tc.version, tc.body, err)
		}
		if err != nil && !strings.Contains(err.Error(), "version") {
			t.Errorf("%s %s: error %v does not name the version", tc.version, tc.body, err)
		}
	}
}

func TestLexical(t *testing.T) {
	// Keywords in any case, comments of both kinds, a BOM, escapes, no ";" after sections.
	text := "\uFEFFVersion = 1.2 ;\n// comment\nAuthorizationRules /* block\n comment */ {\n => PERMIT ( ) ;\n}\nIssuancerules{ => Issue(Type=\"e\\\"\\\\\\/\\n\\t\\u00e9\\ud83d\\ude00\\ud800\", Value=-42); }"
	d := mustEval(t, mustCompile(t, text), nil)
	wantIssued(t, d, map[string]any{"e\"\\/\n\té😀\uFFFD": int64(-42)})
}

// Claims that no later rule can see are not stored (see markHidden); the ones a later rule can see,
// negated or through a Set of types, must be.
func TestHiddenClaims(t *testing.T) {
	d, err := run12(t, `=> issue(type="t", value=1);
![type=="t"] => issue(type="u", value=2);
=> add(type="v", value=3);
[type==JsonToClaimValue("[\"v\", \"w\"]")] => issue(type="sawV", value=true);
=> add(type="hidden", value=4);
[type!="zzz", value==4] => issue(type="sawHidden", value=true);`, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantIssued(t, d, map[string]any{"t": int64(1), "sawV": true, "sawHidden": true})
	p := mustCompile(t, defaultSGX)
	for _, r := range p.sections[secIssue] {
		if !r.act.hidden {
			t.Errorf("default policy: issue at line %d, column %d is stored", r.act.line, r.act.col)
		}
	}
}

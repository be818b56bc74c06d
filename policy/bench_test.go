package policy

import (
	"context"
	"testing"
)

// benchCustomPolicy is a realistic 20-rule custom policy: authorization pins the enclave author,
// product, minimum SVN, no debug and an acceptable TCB; issuance uses 1.2 functions.
const benchCustomPolicy = `version=1.2;
configurationrules {
    => issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault");
};
authorizationrules {
    [type=="x-ms-sgx-is-debuggable", value==true] => deny();
    [type=="x-attestd-advisory-ids", value=="INTEL-SA-00334"] => deny();
    [type=="x-ms-attestation-type", value=="sgx"]
        && [type=="x-ms-sgx-mrsigner", value=="2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"]
        && [type=="x-ms-sgx-product-id", value==1]
        && [type=="x-ms-sgx-svn", value>=1]
        && [type=="x-ms-sgx-is-debuggable", value==false]
        && [type=="x-attestd-tcb-status", value=="UpToDate"] => permit();
    [type=="x-ms-attestation-type", value=="sgx"]
        && [type=="x-ms-sgx-mrsigner", value=="2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"]
        && [type=="x-ms-sgx-product-id", value==1]
        && [type=="x-ms-sgx-svn", value>=2]
        && [type=="x-ms-sgx-is-debuggable", value==false]
        && [type=="x-attestd-tcb-status", value=="SWHardeningNeeded"] => permit();
};
issuancerules {
    c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
    c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
    c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
    c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
    c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
    c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
    c:[type=="x-attestd-tcb-status"] => issue(type="tcb-status", value=c.value);
    c:[type=="x-attestd-tcb-status", value=="UpToDate"] => issue(type="tcb-current", value=true);
    ![type=="tcb-current", issuer=="AttestationPolicy"] => issue(type="tcb-current", value=false);
    c:[type=="x-attestd-advisory-ids"] => issue(type="advisories-known", value=IsSubsetOf(c.value, JsonToClaimValue("[\"INTEL-SA-00615\", \"INTEL-SA-00657\"]")));
    c:[type=="x-ms-runtime"] => add(type="runtime-kid", value=JsonToClaimValue(JmesPath(c.value, "keys[0].kid")));
    c:[type=="runtime-kid", issuer=="AttestationPolicy"] => issue(type="key-id", value=c.value);
    c:[type=="x-ms-sgx-mrenclave"] && d:[type=="x-ms-sgx-svn"] => issue(type="build", value=AppendString(AppendString(c.value, "/"), "1"));
};`

func benchCustomClaims() []Claim { return sgxClaims() }

// benchSGXClaims is sgxClaims grown to 30 claims with what a KSS enclave and legacy copies add.
func benchSGXClaims() []Claim {
	h := "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	return append(sgxClaims(),
		Claim{Type: "x-ms-sgx-config-id", Value: h + h},
		Claim{Type: "x-ms-sgx-config-svn", Value: 3},
		Claim{Type: "x-ms-sgx-isv-extended-product-id", Value: h[:32]},
		Claim{Type: "x-ms-sgx-isv-family-id", Value: h[32:]},
		Claim{Type: "maa-ehd", Value: "CiAgICAgICAgewogICAgICAgICAgICAia2V5cyI6IFsKICAgICAgICAgICAgICAgIHsK"},
		Claim{Type: "aas-ehd", Value: "CiAgICAgICAgewogICAgICAgICAgICAia2V5cyI6IFsKICAgICAgICAgICAgICAgIHsK"},
		Claim{Type: "maa-attestationcollateral", Value: map[string]any{"quotehash": h, "tcbinfohash": h}},
		Claim{Type: "x-ms-inittime", Value: map[string]any{"config": "prod"}},
		Claim{Type: "x-attestd-collateral", Value: map[string]any{"quotehash": h}},
		Claim{Type: "x-ms-policy-signer", Value: map[string]any{"jwk": map[string]any{"kty": "RSA"}}},
		Claim{Type: "nonce", Value: "noncesgx1234"},
		Claim{Type: "x-attestd-td-relaunch-advised", Value: false},
		Claim{Type: "x-attestd-simulated", Value: false},
	)
}

func BenchmarkEvaluateDefaultSGX(b *testing.B) {
	p := mustCompile(b, defaultSGX)
	in := benchSGXClaims()
	if len(in) != 30 {
		b.Fatalf("%d claims", len(in))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := p.Evaluate(ctx, in)
		if err != nil || !d.Permit {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkEvaluateCustom20Rules(b *testing.B) {
	p := mustCompile(b, benchCustomPolicy)
	in := benchCustomClaims()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := p.Evaluate(ctx, in)
		if err != nil || !d.Permit {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkCompileDefaultSGX(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(defaultSGX); err != nil {
			b.Fatal(err)
		}
	}
}

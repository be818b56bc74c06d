// Package policy implements the claim-rule policy language of Microsoft Azure Attestation (MAA),
// versions 1.0, 1.1 and 1.2, so that policies written for MAA run unchanged on attestd.
//
// A policy is compiled once (Compile) into an immutable *Policy and then evaluated many times, in
// parallel if need be, over the claims derived from verified evidence (Evaluate). Evaluation
// decides whether a token may be issued (Decision.Permit), which claims the policy adds to it
// (Decision.Issued) and which engine properties it sets (Decision.Properties).
//
// The language is specified in docs/policy.md, including the points on which MAA's documentation is
// silent and this package had to choose. In short:
//
//   - A rule is "conditions => action;". A condition [type=="...", value>=1] holds when one claim
//     of the working set passes all its tests; "!" (1.2) inverts it.
//   - An identifier (c:[...]) makes the rule fire once per matching claim, and once per
//     combination across identifiers, except that an identifier used only as a set argument
//     (IsSubsetOf, ContainsOnlyValue) stands for all its matching claims at once.
//   - Values of different types never compare equal or unequal; only Integers are ordered.
//   - deny() wins over permit(); with neither, the evidence is not permitted.
//
// JMESPath queries (the JmesPath function) run on github.com/jmespath/go-jmespath v0.4.0, the
// implementation the wider Go ecosystem (the AWS SDK among others) uses. The community fork
// github.com/jmespath-community/go-jmespath v1.1.1 was considered: it can register custom functions,
// which would allow MAA's equals_ignore_case, but it also accepts syntax MAA does not (let
// expressions, arithmetic), so policies tested on attestd could fail on MAA, and it pulls in
// golang.org/x/exp. Portability won.
package policy

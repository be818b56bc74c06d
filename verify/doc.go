// Package verify lets a relying party verify attestation tokens issued by
// attestd or by Microsoft Azure Attestation (MAA).
//
// A Verifier is built for one issuer, the attestation service's base URL.
// It finds the service's signing keys through OpenID discovery
// (<issuer>/.well-known/openid-configuration, then its jwks_uri), caches
// them, and refetches them, rate-limited, when a token names a key it has
// not seen (key rotation). With WithKeySet it uses a fixed key set instead
// and never touches the network.
//
//	v, err := verify.New("https://sharedwus.wus.attest.azure.net")
//	...
//	tok, err := v.Verify(ctx, jwt)
//	if err != nil {
//		return fmt.Errorf("token rejected (%s): %w", verify.CodeOf(err), err)
//	}
//	mrenclave := tok.Claims["x-ms-sgx-mrenclave"]
//
// Verification is deliberately narrower than JOSE allows: only allow-listed
// asymmetric algorithms (RS256 by default), never "none"; the key is chosen
// by kid from the issuer's published set only, never from the token's own
// jwk, x5c, x5u or jku headers; iss must equal the issuer; exp is required.
// Tokens for simulated evidence (attestd's development platform) are
// rejected unless WithAllowSimulated is given. Every rejection is an *Error
// with a stable Code; see docs/sdk.md.
package verify

package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/attestd/attestd/internal/testvectors"
)

// recordedKeySets returns the /certs bodies of the MAA recordings, when
// shared/testdata/maa-recordings is present.
func recordedKeySets(t testing.TB) [][]byte {
	t.Helper()
	vec, ok := testvectors.Lookup()
	if !ok {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(vec, "..", "maa-recordings", "node", "tokencerttests", "recording_getcertificate*.json"))
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Entries []struct{ ResponseBody json.RawMessage }
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Entries[0].ResponseBody)
	}
	return out
}

// MAA's recorded key sets parse: the 2048-bit signing key and the two
// chain keys are usable, the 1024-bit key is kept but unusable.
func TestParseRecordedJWKS(t *testing.T) {
	sets := recordedKeySets(t)
	if len(sets) == 0 {
		if os.Getenv("ATTESTD_REQUIRE_VECTORS") != "" {
			t.Fatal("shared/testdata/maa-recordings not found beside the vectors (set ATTESTD_VECTORS)")
		}
		t.Skip("shared/testdata/maa-recordings not found")
	}
	if len(sets) != 3 {
		t.Fatalf("%d recorded key sets, want 3 (shared, aad, isolated)", len(sets))
	}
	for _, b := range sets {
		ks, err := parseJWKS(b)
		if err != nil {
			t.Fatal(err)
		}
		for kid, want := range map[string]bool{
			"rPtBGRWTlPmzs5u35L0QRD9WdymeKPRxteTeTlwN0Ec=": true,
			"5n95sus8qrcBcVLXZu3lPYgdMlM":                  true,
			"3UrBlwdkkTBWV14k7IodIzjAr8k":                  true,
			"15N2MHoj9iAdkF/c5nRE3J2HB8JG6Vue3Uzvu3K/Ses=": false, // RSA-1024
		} {
			ks := ks.lookup(kid)
			if len(ks) != 1 || (ks[0].err == nil) != want {
				t.Errorf("kid %s: %d entries, usable: want %v", kid, len(ks), want)
				continue
			}
			if want && (ks[0].notAfter.IsZero() || ks[0].key.(*rsa.PublicKey).N.BitLen() != 2048) {
				t.Errorf("kid %s: %+v", kid, ks[0])
			}
		}
	}
}

// FuzzParseJWKS feeds arbitrary bytes to the key set parser. It must never
// panic, and every entry it calls usable must hold a supported public key
// of adequate strength under a non-empty kid.
func FuzzParseJWKS(f *testing.F) {
	for _, b := range recordedKeySets(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kid":"ec","kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`))
	f.Add([]byte(`{"keys":[{"kid":"ed","kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kid":"x","kty":"RSA","x5c":["MIIB"]},"junk",null,{"kid":1}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseJWKS(data)
		if err != nil {
			if ks != nil {
				t.Fatal("error with a key set")
			}
			return
		}
		for kid, entries := range ks.byKid {
			if kid == "" || len(entries) == 0 {
				t.Fatalf("kid %q with %d entries", kid, len(entries))
			}
			for _, k := range entries {
				if k.kid != kid {
					t.Fatalf("entry kid %q under %q", k.kid, kid)
				}
				if k.err != nil {
					if k.key != nil {
						t.Fatalf("unusable entry %q keeps a key", kid)
					}
					continue
				}
				switch pub := k.key.(type) {
				case *rsa.PublicKey:
					if pub.N.BitLen() < MinRSABits || pub.E < 3 {
						t.Fatalf("weak RSA key accepted: %d bits, e=%d", pub.N.BitLen(), pub.E)
					}
				case *ecdsa.PublicKey:
					// ECDH conversion fails for points off the curve.
					if _, err := pub.ECDH(); err != nil {
						t.Fatalf("EC key: %v", err)
					}
				case ed25519.PublicKey:
					if len(pub) != ed25519.PublicKeySize {
						t.Fatalf("Ed25519 key of %d bytes", len(pub))
					}
				default:
					t.Fatalf("usable entry %q with key %T", kid, k.key)
				}
			}
		}
		// Parsing is deterministic.
		again, err := parseJWKS(bytes.Clone(data))
		if err != nil || len(again.byKid) != len(ks.byKid) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

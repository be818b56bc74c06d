package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxTokenSize is the largest token Verify accepts. Real MAA tokens are
// around 10 KiB; the bound keeps a hostile caller from making Verify
// decode megabytes of JSON.
const MaxTokenSize = 1 << 20

// Header is the part of a token's JOSE header a relying party may want to
// see.
type Header struct {
	Alg string // signature algorithm, one of the verifier's allow-list
	Typ string // "JWT" for MAA and attestd tokens; not checked
	Kid string // id of the key set entry that verified the signature
	JKU string // the issuer's key set URL, when the token names one
}

// Token is a verified token.
type Token struct {
	Raw    string         // the compact serialization, as given to Verify
	Header Header         //
	Claims map[string]any // the claims set; JSON numbers are float64
}

// parsed is a token split and decoded, before any check of its signature.
type parsed struct {
	header       Header
	hasJKU       bool
	claims       map[string]any
	signingInput []byte // header "." payload, as the signer hashed it
	sig          []byte
}

// parseToken splits and decodes a compact JWS. It checks only syntax; what
// the header asks for is judged by the caller.
func parseToken(token string) (*parsed, error) {
	if len(token) > MaxTokenSize {
		return nil, newError(CodeMalformedToken, nil, "token is %d bytes, more than %d", len(token), MaxTokenSize)
	}
	// Go's base64 decoder skips CR and LF; rejecting every byte outside the
	// base64url alphabet first means one token has exactly one spelling.
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, newError(CodeMalformedToken, nil, "byte %d (0x%02x) is not base64url or '.'", i, c)
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, newError(CodeMalformedToken, nil, "token has %d parts, want 3 (header.payload.signature)", len(parts))
	}
	hdrBytes, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return nil, newError(CodeMalformedToken, err, "header is not base64url")
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, newError(CodeMalformedToken, err, "payload is not base64url")
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return nil, newError(CodeMalformedToken, err, "signature is not base64url")
	}

	hdr, err := decodeObject(hdrBytes)
	if err != nil {
		return nil, newError(CodeMalformedToken, err, "header")
	}
	p := &parsed{sig: sig, signingInput: []byte(token[:len(parts[0])+1+len(parts[1])])}
	for name, dst := range map[string]*string{"alg": &p.header.Alg, "typ": &p.header.Typ, "kid": &p.header.Kid, "jku": &p.header.JKU} {
		v, ok := hdr[name]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, newError(CodeMalformedToken, nil, "header member %q is not a string", name)
		}
		*dst = s
	}
	_, p.hasJKU = hdr["jku"]
	if _, ok := hdr["crit"]; ok {
		// RFC 7515 §4.1.11: a verifier must reject crit extensions it does
		// not understand, and it understands none.
		return nil, newError(CodeMalformedToken, nil, "header member crit is not supported")
	}
	if b64, ok := hdr["b64"]; ok && b64 != true {
		return nil, newError(CodeMalformedToken, nil, "unencoded payloads (b64: false) are not supported")
	}

	claims, err := decodeObject(payload)
	if err != nil {
		return nil, newError(CodeMalformedToken, err, "claims set")
	}
	p.claims = claims
	return p, nil
}

// decodeObject decodes a JSON object, refusing duplicate member names at
// the top level. encoding/json keeps the last duplicate while other JOSE
// libraries keep the first; refusing them means a signed token cannot mean
// one thing to this verifier and another to a different one.
func decodeObject(b []byte) (map[string]any, error) {
	if err := checkNoDuplicates(b); err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}

func checkNoDuplicates(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := t.(string)
		if !ok {
			return errors.New("not a JSON object")
		}
		if seen[name] {
			return fmt.Errorf("duplicate member %q", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

package dcap

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Encoding is how a quote file was encoded.
type Encoding string

// Quote encodings DecodeQuote recognises.
const (
	EncodingBinary    Encoding = "binary"
	EncodingHex       Encoding = "hex"
	Encoding0xHex     Encoding = "0x-hex"
	EncodingBase64    Encoding = "base64"
	EncodingBase64URL Encoding = "base64url"
)

// DecodeQuote returns the binary quote in data, which may be the quote
// itself or its hex (optionally 0x-prefixed), base64 or base64url text
// (padded or not, surrounding whitespace ignored).
func DecodeQuote(data []byte) ([]byte, Encoding, error) {
	if looksLikeBinaryQuote(data) {
		return data, EncodingBinary, nil
	}
	text := string(bytes.TrimSpace(data))
	if text == "" {
		return nil, "", newErr(CodeMalformedQuote, "quote is empty")
	}
	if strings.HasPrefix(text, "0x") || strings.HasPrefix(text, "0X") {
		b, err := hex.DecodeString(text[2:])
		if err != nil {
			return nil, "", wrapErr(CodeMalformedQuote, err, "quote starts with 0x but is not hex")
		}
		if len(b) == 0 {
			return nil, "", newErr(CodeMalformedQuote, "quote is empty after its 0x prefix")
		}
		return b, Encoding0xHex, nil
	}
	if isHexText([]byte(text)) {
		if b, err := hex.DecodeString(text); err == nil && looksLikeBinaryQuote(b) {
			return b, EncodingHex, nil
		}
	}
	compact := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, text)
	unpadded := strings.TrimRight(compact, "=")
	if b, err := base64.RawStdEncoding.DecodeString(unpadded); err == nil && looksLikeBinaryQuote(b) {
		return b, EncodingBase64, nil
	}
	if b, err := base64.RawURLEncoding.DecodeString(unpadded); err == nil && looksLikeBinaryQuote(b) {
		return b, EncodingBase64URL, nil
	}
	if len(data) >= 2 {
		if v := binary.LittleEndian.Uint16(data); v >= 1 && v <= 16 {
			// A binary quote of a version we do not know: let the parser
			// name the version.
			return data, EncodingBinary, nil
		}
	}
	return nil, "", newErr(CodeMalformedQuote, "quote is neither a binary DCAP quote nor its hex, base64 or base64url encoding")
}

// looksLikeBinaryQuote checks the header's version and key type words.
func looksLikeBinaryQuote(b []byte) bool {
	if len(b) < headerSize {
		return false
	}
	v := binary.LittleEndian.Uint16(b[0:])
	k := binary.LittleEndian.Uint16(b[2:])
	return v >= 3 && v <= 5 && k == attestationKeyECDSAP256
}

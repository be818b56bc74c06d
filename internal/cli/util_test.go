package cli

import "encoding/base64"

func b64(b []byte, url bool) string {
	if url {
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

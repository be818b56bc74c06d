package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/attestd/attestd/verify"
)

// A relying party verifying MAA tokens through discovery: the keys are
// fetched from the issuer, cached, and refetched when MAA rotates them.
func ExampleNew() {
	v, err := verify.New("https://sharedwus.wus.attest.azure.net",
		verify.WithExpectedClaims(map[string]any{
			"x-ms-sgx-mrsigner":      "2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa",
			"x-ms-sgx-is-debuggable": false,
		}))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := v.Verify(context.Background(), os.Getenv("TOKEN"))
	var ve *verify.Error
	switch {
	case errors.As(err, &ve) && ve.Code == verify.CodeKeyUnavailable:
		log.Printf("issuer unreachable, try again later: %v", err)
		return
	case err != nil:
		log.Printf("token rejected (%s): %v", verify.CodeOf(err), err)
		return
	}
	fmt.Println(tok.Claims["x-ms-sgx-mrenclave"])
}

// Offline verification with a key set obtained out of band (for example
// with client.SigningCertificates, or from a recording).
func ExampleWithKeySet() {
	jwks, err := os.ReadFile("certs.json")
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New("https://attestd.example.com", verify.WithKeySet(jwks))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), os.Getenv("TOKEN")); err != nil {
		log.Fatal(err)
	}
}

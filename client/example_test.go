package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/attestd/attestd/client"
)

// Attest an SGX quote against a development attestd whose TLS certificate
// comes from a private CA.
func ExampleClient_Attest() {
	caPEM, err := os.ReadFile("ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	hc, err := client.NewHTTPClientWithCA(caPEM)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New("https://attestd.internal:8443", client.WithHTTPClient(hc))
	if err != nil {
		log.Fatal(err)
	}
	quote, err := os.ReadFile("quote.bin")
	if err != nil {
		log.Fatal(err)
	}
	jwt, err := c.Attest(context.Background(), client.SGX, client.AttestRequest{
		Evidence:    quote,
		RuntimeData: &client.Data{Bytes: []byte(`{"jwk":{"kty":"EC"}}`), JSON: true},
		Nonce:       "3f1c0d",
	})
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		log.Fatalf("service rejected the evidence: %s (%s)", apiErr.Code, apiErr.Message)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(jwt)
}

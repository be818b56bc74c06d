package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/verify"
)

// Set a signed SGX policy on an isolated-mode provider, verifying the
// service's answer against the keys it publishes.
func ExampleClient_SetPolicy() {
	const base = "https://attestd.internal:8443"
	caPEM, err := os.ReadFile("ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	hc, err := client.NewHTTPClientWithCA(caPEM)
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(base, verify.WithHTTPClient(hc))
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(base, client.WithHTTPClient(hc),
		client.WithBearerToken(os.Getenv("ATTESTD_TOKEN")), client.WithResponseVerifier(v))
	if err != nil {
		log.Fatal(err)
	}
	keyPEM, _ := os.ReadFile("signer.key")
	certPEM, _ := os.ReadFile("signer.pem")
	signer, err := client.LoadSigner(keyPEM, certPEM)
	if err != nil {
		log.Fatal(err)
	}
	text, err := os.ReadFile("sgx.policy")
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.SetPolicy(context.Background(), client.SGX, string(text), signer)
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr):
		log.Fatalf("refused: %s (%s): %s", apiErr.Code, apiErr.Reason, apiErr.Message)
	case errors.Is(err, client.ErrTokenHashMismatch):
		log.Fatal("the service stored something other than what was sent")
	case verify.CodeOf(err) != "":
		log.Fatalf("the answer is not the service's: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(res.Resolution, res.TokenHash)
}

// Command attestctl is the attestd command line: evidence verification,
// the simulator, and (later) attestation and token verification.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/attestd/attestd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Run(ctx, os.Args[1:], cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}

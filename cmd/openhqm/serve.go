package main

import (
	"context"
	"fmt"
	"io"
)

// serveMain runs `openhqm serve`. It is a placeholder until the ingress lands.
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "openhqm serve: not implemented yet")
	return 2
}

package main

import (
	"context"
	"fmt"
	"io"
)

// workerMain runs `openhqm worker`. It is a placeholder until the worker pool lands.
func workerMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "openhqm worker: not implemented yet")
	return 2
}

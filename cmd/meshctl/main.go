// Command meshctl plans and applies a meshd spec: peerings, routes and security-group rules between the
// VPCs of several clusters, and the DNS forwarding between them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshd-io/meshd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &cli.App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	code := app.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

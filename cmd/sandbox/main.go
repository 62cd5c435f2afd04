// Command sandbox runs meshd's local sandbox: three simulated EKS clusters on one machine (moto for AWS, one
// etcd, a kube-apiserver and a CoreDNS per cluster, the kubelet and load-balancer-controller stand-ins), all
// state under .sandbox/ in the repository.
//
//	sandbox up [--restart]        start it in the background (reuses a healthy running sandbox)
//	sandbox down                  stop every process it started (by PID) and remove .sandbox/
//	sandbox status                what runs
//	sandbox lookup CLUSTER NAME   an A query to CLUSTER's CoreDNS
//	sandbox verify [--wait D]     every cluster's CoreDNS resolves every cluster's sample Pod name
//	sandbox corefile CLUSTER [--reset]   print the coredns ConfigMap's Corefile, or reset it to EKS's default
//	sandbox delete-route CLUSTER  delete one route to another cluster's CIDR (drift for meshd to repair)
//	sandbox seed-ca               namespace pingcap everywhere, the TiDB CA Secret in the first cluster
//	sandbox secret CLUSTER NAMESPACE NAME   a Secret's type, key names and content hash, never a value
//	sandbox spawn NAME -- CMD...  run CMD in the background as part of the sandbox (down stops it)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshd-io/meshd/internal/testenv"
)

const usage = `usage: sandbox [--dir DIR] COMMAND

Commands:
  up [--restart]               start the sandbox in the background and wait until it is ready
  down                         stop everything the sandbox started and remove its directory
  status                       show the sandbox's processes
  lookup CLUSTER NAME [--tcp]  query CLUSTER's CoreDNS for NAME (A)
  verify [--wait DURATION]     check that each cluster's CoreDNS resolves each cluster's sample Pod
  corefile CLUSTER [--reset]   print CLUSTER's coredns ConfigMap Corefile (--reset: EKS's default)
  delete-route CLUSTER         delete a route from CLUSTER to another cluster's CIDR
  seed-ca                      create namespace pingcap in every cluster and, in the first, the TiDB CA
                               Secret pingcap/cluster1-ca-secret (kubernetes.io/tls) that the spec replicates
  secret CLUSTER NAMESPACE NAME
                               print a Secret's type, key names and content hash (never a value)
  spawn NAME -- CMD [ARG...]   run CMD in the background, logged and stopped with the sandbox
  env                          print the environment file (AWS_ENDPOINT_URL, KUBECONFIG, ...)

DIR defaults to .sandbox in the repository root.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	dir := fs.String("dir", "", "sandbox directory (default <repo>/.sandbox)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sandbox:", err)
			return 1
		}
		*dir = root + "/.sandbox"
	}
	d := &Dir{Path: *dir}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "up":
		err = d.Up(ctx, rest)
	case "serve":
		stop() // serve handles its own signals
		err = d.Serve(rest)
	case "down":
		err = d.Down()
	case "status":
		err = d.Status()
	case "lookup":
		err = d.Lookup(rest)
	case "verify":
		err = d.Verify(ctx, rest)
	case "corefile":
		err = d.Corefile(ctx, rest)
	case "delete-route":
		err = d.DeleteRoute(ctx, rest)
	case "seed-ca":
		err = d.SeedCA(ctx, rest)
	case "secret":
		err = d.Secret(ctx, rest)
	case "spawn":
		err = d.Spawn(rest)
	case "env":
		var b []byte
		if b, err = os.ReadFile(d.file("env")); err == nil {
			os.Stdout.Write(b)
		}
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "sandbox: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var q quiet
		if !errors.As(err, &q) {
			fmt.Fprintln(os.Stderr, "sandbox:", err)
		}
		return 1
	}
	return 0
}

// quiet is an error whose explanation was already printed.
type quiet struct{ error }

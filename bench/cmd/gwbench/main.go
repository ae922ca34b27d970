// Command gwbench is the harness of bench/gateway.sh: it runs one causeway
// gateway per process over a fixed, etcd-free catalog, the backend that all
// compared paths share, the certificates for both the gateways and the
// HAProxy pair, and a client that holds many idle tunneled connections.
//
//	gwbench certs -dir DIR
//	gwbench backend -http ADDR
//	gwbench gateway -dir DIR -cluster a|b [topology flags] [-app-protocol NAME=http] [-pprof ADDR]
//	gwbench idle -addr ADDR -n N [-hold D]
//
// Everything listens on loopback addresses given by the caller.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "certs":
		err = runCerts(args)
	case "backend":
		err = runBackend(ctx, args)
	case "gateway":
		err = runGateway(ctx, args)
	case "idle":
		err = runIdle(ctx, args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gwbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gwbench certs|backend|gateway|idle [flags]")
	os.Exit(2)
}

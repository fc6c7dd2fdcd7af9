// Command loadgen is the load harness of dws_notify: it measures a Caddy
// built with the module (./caddy from ./xcaddy.sh) side by side with plain
// reverse_proxy, on the same machine and the same backend. bench/run.sh is
// the entry point; see BENCHMARKS.md ("gateway (load harness)") for what the
// figures mean.
//
// Subcommands:
//
//	loadgen bench   [flags]   alternating rounds of the three gateway modes
//	loadgen long    [flags]   1,000,000 notifications through mode b
//	loadgen drain   [flags]   mode q: -n notifications queued while the
//	                          backend is down, then the drain timed
//	loadgen presign [flags]   fill the cache of pre-signed notifications
//	loadgen backend [flags]   the minimal backend (started by bench and long)
//
// The three modes, each a fresh Caddy process with a fresh storage directory:
//
//	a  plain reverse_proxy to the backend
//	b  dws_notify with everything on (verify, field rules, durable dedupe,
//	   forward, acknowledgement signed with merchant_private_key), then
//	   reverse_proxy
//	c  the same as b without merchant_private_key
//	q  c with acknowledge on_receipt: S once durably queued, delivered
//	   from the inbox (bench -modes c,q compares it with c)
//
// Every notification is pre-signed (RSA-2048 with the demo DWS key, about
// 1 ms each) before anything is timed, with a distinct requestId, and the
// signatures are cached under bench/out. All three modes send exactly the
// same requests, over keep-alive connections, one per concurrent worker,
// written by a minimal HTTP/1.1 client that allocates nothing per request.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "bench":
		err = cmdBench(args)
	case "long":
		err = cmdLong(args)
	case "drain":
		err = cmdDrain(args)
	case "presign":
		err = cmdPresign(args)
	case "backend":
		err = cmdBackend(args)
	case "-h", "-help", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown subcommand %q\n", cmd)
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: loadgen <subcommand> [flags]

  bench    alternating rounds of a (reverse_proxy), b (dws_notify, signed
           answers) and c (dws_notify, unsigned answers); prints the ratios
  long     push -n notifications (default 1,000,000) through b; cost per
           notification and RSS as the store grows
  drain    mode q (acknowledge on_receipt): queue -n notifications (default
           100,000) while the backend is down, then time their delivery
  presign  fill the pre-signed notification cache
  backend  run the minimal backend

Run "loadgen <subcommand> -h" for the flags. bench/run.sh drives all of it.
`)
	os.Exit(2)
}

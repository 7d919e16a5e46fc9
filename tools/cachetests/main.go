// Command cachetests runs microcache against the public RFC 9111 conformance
// suite, http-tests/cache-tests (https://cache-tests.fyi), and summarizes
// the results. It has two subcommands:
//
//	cachetests serve -origin URL [-addr 127.0.0.1:0] [-ttl 30s]
//	cachetests report -results FILE -tests FILE [-classes FILE]
//
// serve listens on a loopback address and answers every request with
// microcache (Config{TTL: -ttl, HashQuery: true, Exposed: true}) in front
// of an [httputil.ReverseProxy] to -origin, the suite's origin server.
// HashQuery is on because the suite tells its tests apart by query string,
// as any generic proxy needs. When listening it prints one line,
// "listening on http://ADDR", to standard output; it shuts down on SIGINT
// or SIGTERM.
//
// report reads the suite's JSON results (what its CLI prints), the list of
// tests with their kinds (required, optimal or check; see run.sh, which
// writes it), and optionally a classification of failures: a tab-separated
// file with a header line naming at least the columns class, result and
// test (kind and why are shown when present), such as the one written for
// the 2026-12-01 run. It prints passed/total per kind, the failing required
// tests grouped by class (i, i-doc, ii, iii, n/a, then any other class,
// then unclassified), and where the results differ from the
// classification. Without -classes every failure is unclassified.
//
// run.sh does the whole run: suite checkout, origin, proxy, CLI, report.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  cachetests serve -origin URL [-addr 127.0.0.1:0] [-ttl 30s]
  cachetests report -results FILE -tests FILE [-classes FILE]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveMain(os.Args[2:])
	case "report":
		err = reportMain(os.Args[2:], os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "cachetests: unknown subcommand %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cachetests:", err)
		os.Exit(1)
	}
}

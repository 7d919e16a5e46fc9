package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Test kinds, as the suite names them. A test without a kind is required.
const (
	kindRequired = "required"
	kindOptimal  = "optimal"
	kindCheck    = "check"
)

var kinds = []string{kindRequired, kindOptimal, kindCheck}

// Outcomes, named as the suite's lib/results.mjs names its result types
// (and as classes.tsv's result column spells them).
const (
	outPass         = "pass"          // any kind, result true
	outFail         = "fail"          // required, assertion failed
	outOptionalFail = "optional_fail" // optimal, assertion failed
	outNo           = "no"            // check, assertion failed
	outSetupFail    = "setup_fail"    // the harness could not set the test up
	outRetry        = "retry"         // the cache retried a request
	outHarnessFail  = "harness_fail"  // the test aborted
	outUntested     = "untested"      // no result (e.g. browser-only tests)
)

// classOrder is the order failures are grouped in; classes not listed here
// follow in order of first appearance, then unclassified.
var classOrder = []string{"i", "i-doc", "ii", "iii", "n/a"}

const unclassified = "unclassified"

// suiteTest is one entry of the tests file: a test id and its kind.
type suiteTest struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// class is one line of the classification file.
type class struct {
	Class  string
	Result string // the outcome recorded when it was classified
	Kind   string
	Why    string
}

// testResult is one test's outcome in a run, joined with its classification.
type testResult struct {
	ID      string
	Kind    string
	Outcome string
	Message string // the suite's explanation, if it gave one
	Class   *class // nil: not in the classification
}

// parseResults reads the suite CLI's JSON output: an object from test id to
// true (passed), false, or an array whose first element names the failure
// ("Assertion", "Setup", "AbortError", ...) and whose second explains it.
func parseResults(r io.Reader) (map[string]json.RawMessage, error) {
	var res map[string]json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if res == nil {
		return nil, errors.New("results: not a JSON object")
	}
	return res, nil
}

// parseTests reads the tests file: a JSON array of {"id", "kind"}.
func parseTests(r io.Reader) ([]suiteTest, error) {
	var tests []suiteTest
	if err := json.NewDecoder(r).Decode(&tests); err != nil {
		return nil, fmt.Errorf("tests: %w", err)
	}
	seen := make(map[string]bool, len(tests))
	for i, t := range tests {
		if t.ID == "" {
			return nil, fmt.Errorf("tests: entry %d has no id", i)
		}
		if seen[t.ID] {
			return nil, fmt.Errorf("tests: duplicate id %q", t.ID)
		}
		seen[t.ID] = true
		if t.Kind == "" {
			tests[i].Kind = kindRequired
		} else if !slices.Contains(kinds, t.Kind) {
			return nil, fmt.Errorf("tests: %q has unknown kind %q", t.ID, t.Kind)
		}
	}
	return tests, nil
}

// parseClasses reads a tab-separated classification whose first line names
// the columns; class, result and test are required, kind and why optional.
// Blank lines and lines starting with # are skipped.
func parseClasses(r io.Reader) (map[string]class, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	col := map[string]int{}
	out := map[string]class{}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(col) == 0 {
			for i, f := range fields {
				col[strings.ToLower(strings.TrimSpace(f))] = i
			}
			for _, need := range []string{"class", "result", "test"} {
				if _, ok := col[need]; !ok {
					return nil, fmt.Errorf("classes: header line has no %q column", need)
				}
			}
			continue
		}
		get := func(name string) string {
			i, ok := col[name]
			if !ok || i >= len(fields) {
				return ""
			}
			return strings.TrimSpace(fields[i])
		}
		id := get("test")
		if id == "" || get("class") == "" {
			return nil, fmt.Errorf("classes: line %d: no test id or class", line)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("classes: line %d: %q classified twice", line, id)
		}
		out[id] = class{Class: get("class"), Result: get("result"), Kind: get("kind"), Why: get("why")}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("classes: %w", err)
	}
	if len(col) == 0 {
		return nil, errors.New("classes: empty file")
	}
	return out, nil
}

// outcome turns one raw result into an outcome, following
// determineTestResult in the suite's lib/results.mjs without its
// dependency check (as the suite's CLI does for a single test). It returns
// the suite's message too, when the result carries one.
func outcome(kind string, raw json.RawMessage) (string, string) {
	if raw == nil {
		return outUntested, ""
	}
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "true":
		return outPass, ""
	case "false":
		return outHarnessFail, ""
	}
	var arr []any
	_ = json.Unmarshal(raw, &arr) // anything but an array is an assertion failure below
	var typ, msg string
	if len(arr) > 0 {
		typ, _ = arr[0].(string)
	}
	if len(arr) > 1 {
		msg = fmt.Sprint(arr[1])
	}
	switch {
	case typ == "Setup" && msg == "retry":
		return outRetry, msg
	case typ == "Setup":
		return outSetupFail, msg
	case typ == "AbortError":
		return outHarnessFail, msg
	}
	switch kind {
	case kindOptimal:
		return outOptionalFail, msg
	case kindCheck:
		return outNo, msg
	}
	return outFail, msg
}

// report is a run's results joined with the tests and the classification.
type report struct {
	Tests      []testResult // in the order of the tests file
	Unknown    []string     // ids with a result but not in the tests file
	Classified bool         // whether a classification was given at all
}

// join builds a report. classes may be nil (no classification given).
func join(tests []suiteTest, results map[string]json.RawMessage, classes map[string]class) report {
	rep := report{Classified: classes != nil}
	known := make(map[string]bool, len(tests))
	for _, t := range tests {
		known[t.ID] = true
		o, msg := outcome(t.Kind, results[t.ID])
		tr := testResult{ID: t.ID, Kind: t.Kind, Outcome: o, Message: msg}
		if c, ok := classes[t.ID]; ok {
			tr.Class = &c
		}
		rep.Tests = append(rep.Tests, tr)
	}
	for id := range results {
		if !known[id] {
			rep.Unknown = append(rep.Unknown, id)
		}
	}
	slices.Sort(rep.Unknown)
	return rep
}

// kindCount is the tally for one kind of test.
type kindCount struct {
	Passed, Total, Untested int // Total counts tests with a result
}

func (r report) counts() map[string]kindCount {
	c := map[string]kindCount{}
	for _, t := range r.Tests {
		k := c[t.Kind]
		switch t.Outcome {
		case outUntested:
			k.Untested++
		case outPass:
			k.Passed++
			k.Total++
		default:
			k.Total++
		}
		c[t.Kind] = k
	}
	return c
}

// failingByClass groups the failing tests of one kind by class, in
// classOrder, then other classes, then unclassified. Every group in
// classOrder is present, empty or not.
func (r report) failingByClass(kind string) (names []string, groups map[string][]testResult) {
	groups = map[string][]testResult{}
	names = slices.Clone(classOrder)
	for _, t := range r.Tests {
		if t.Kind != kind || t.Outcome == outPass || t.Outcome == outUntested {
			continue
		}
		name := unclassified
		if t.Class != nil {
			name = t.Class.Class
		}
		if name != unclassified && !slices.Contains(names, name) {
			names = append(names, name)
		}
		groups[name] = append(groups[name], t)
	}
	return append(names, unclassified), groups
}

// differences lists tests whose outcome disagrees with the classification:
// classified failures that now pass or went untested, and classified
// failures whose outcome changed. Unclassified failures are listed by
// failingByClass and in the summary instead.
func (r report) differences() []string {
	var out []string
	for _, t := range r.Tests {
		if t.Class == nil {
			continue
		}
		switch {
		case t.Outcome == outPass:
			out = append(out, fmt.Sprintf("%s (%s, class %s): passes now; classified as %s", t.ID, t.Kind, t.Class.Class, t.Class.Result))
		case t.Class.Result != "" && t.Outcome != t.Class.Result:
			out = append(out, fmt.Sprintf("%s (%s, class %s): %s now; classified as %s", t.ID, t.Kind, t.Class.Class, t.Outcome, t.Class.Result))
		}
	}
	return out
}

// byWhy splits tests into runs that share the classification's why, in
// order of first appearance.
func byWhy(ts []testResult) [][]testResult {
	var out [][]testResult
	index := map[string]int{}
	for _, t := range ts {
		why := ""
		if t.Class != nil {
			why = t.Class.Why
		}
		i, ok := index[why]
		if !ok {
			i = len(out)
			index[why] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], t)
	}
	return out
}

// write prints the report.
func (r report) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	counts := r.counts()
	for _, k := range kinds {
		c := counts[k]
		fmt.Fprintf(bw, "%-8s %d/%d passed, %d failed", k, c.Passed, c.Total, c.Total-c.Passed)
		if c.Untested > 0 {
			fmt.Fprintf(bw, ", %d untested", c.Untested)
		}
		fmt.Fprintln(bw)
	}
	if len(r.Unknown) > 0 {
		fmt.Fprintf(bw, "results for %d tests not in the tests file (not counted): %s\n", len(r.Unknown), strings.Join(r.Unknown, " "))
	}
	if !r.Classified {
		fmt.Fprintln(bw, "\nno classification given: every failure is unclassified")
	}
	for _, k := range kinds {
		names, groups := r.failingByClass(k)
		if k != kindRequired {
			// Required failures are listed test by test; the others only as counts.
			fmt.Fprintf(bw, "\nfailing %s tests by class:", k)
			for _, n := range names {
				fmt.Fprintf(bw, " %s %d,", n, len(groups[n]))
			}
			fmt.Fprintln(bw)
			continue
		}
		fmt.Fprintf(bw, "\nfailing required tests by class:\n")
		for _, n := range names {
			fmt.Fprintf(bw, "  %-12s %d\n", n, len(groups[n]))
		}
		for _, n := range names {
			if len(groups[n]) == 0 {
				continue
			}
			fmt.Fprintf(bw, "\n%s (%d):\n", n, len(groups[n]))
			for _, g := range byWhy(groups[n]) {
				if g[0].Class != nil && g[0].Class.Why != "" {
					fmt.Fprintf(bw, "  %s:\n", g[0].Class.Why)
				}
				for _, t := range g {
					fmt.Fprintf(bw, "    %-50s %s", t.ID, t.Outcome)
					if t.Class == nil && t.Message != "" {
						fmt.Fprintf(bw, "  %s", t.Message)
					}
					fmt.Fprintln(bw)
				}
			}
		}
	}
	if r.Classified {
		diffs := r.differences()
		var uncl []string
		for _, t := range r.Tests {
			if t.Class == nil && t.Outcome != outPass && t.Outcome != outUntested {
				uncl = append(uncl, fmt.Sprintf("%s (%s): %s", t.ID, t.Kind, t.Outcome))
			}
		}
		fmt.Fprintf(bw, "\ndifferences from the classification: %d\n", len(diffs)+len(uncl))
		for _, d := range diffs {
			fmt.Fprintf(bw, "  %s\n", d)
		}
		for _, u := range uncl {
			fmt.Fprintf(bw, "  %s; not classified\n", u)
		}
	}
	return bw.Flush()
}

// reportMain runs the report subcommand.
func reportMain(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("report", flag.ContinueOnError)
	resultsPath := flags.String("results", "", "`file` with the suite CLI's JSON results (required)")
	testsPath := flags.String("tests", "", "`file` with the suite's tests as a JSON array of {id, kind} (required; run.sh writes it)")
	classesPath := flags.String("classes", os.Getenv("CACHETESTS_CLASSES"), "tab-separated classification `file` (class, result, kind, test, why); default $CACHETESTS_CLASSES; none: no grouping")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("report: unexpected arguments %q", flags.Args())
	}
	if *resultsPath == "" || *testsPath == "" {
		return errors.New("report: -results and -tests are required")
	}
	results, err := parseFile(*resultsPath, parseResults)
	if err != nil {
		return err
	}
	tests, err := parseFile(*testsPath, parseTests)
	if err != nil {
		return err
	}
	var classes map[string]class
	if *classesPath != "" {
		classes, err = parseFile(*classesPath, parseClasses)
		if errors.Is(err, fs.ErrNotExist) {
			// The classification lives outside the repository; without it
			// the report is still useful.
			fmt.Fprintf(stdout, "classification %s not found; every failure is unclassified\n\n", *classesPath)
		} else if err != nil {
			return err
		}
	}
	return join(tests, results, classes).write(stdout)
}

func parseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

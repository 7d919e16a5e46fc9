package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		kind, raw   string
		want, wantM string
	}{
		{kindRequired, `true`, outPass, ""},
		{kindCheck, ` true `, outPass, ""},
		{kindRequired, `false`, outHarnessFail, ""},
		{kindRequired, `["Assertion", "Response 2 comes from cache"]`, outFail, "Response 2 comes from cache"},
		{kindOptimal, `["Assertion", "x"]`, outOptionalFail, "x"},
		{kindCheck, `["Assertion", "x"]`, outNo, "x"},
		{kindRequired, `["Setup", "Response 1 status is 502, not 200"]`, outSetupFail, "Response 1 status is 502, not 200"},
		{kindCheck, `["Setup", "retry"]`, outRetry, "retry"},
		{kindRequired, `["AbortError", "timeout"]`, outHarnessFail, "timeout"},
		{kindRequired, `"odd"`, outFail, ""},
	} {
		got, msg := outcome(tc.kind, json.RawMessage(tc.raw))
		if got != tc.want || msg != tc.wantM {
			t.Errorf("outcome(%s, %s) = %q, %q; want %q, %q", tc.kind, tc.raw, got, msg, tc.want, tc.wantM)
		}
	}
	if got, _ := outcome(kindRequired, nil); got != outUntested {
		t.Errorf("outcome of a missing result = %q, want %q", got, outUntested)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"results array", func() error { _, err := parseResults(strings.NewReader(`[]`)); return err }()},
		{"results null", func() error { _, err := parseResults(strings.NewReader(`null`)); return err }()},
		{"tests no id", func() error { _, err := parseTests(strings.NewReader(`[{"kind":"check"}]`)); return err }()},
		{"tests duplicate", func() error { _, err := parseTests(strings.NewReader(`[{"id":"a"},{"id":"a"}]`)); return err }()},
		{"tests unknown kind", func() error { _, err := parseTests(strings.NewReader(`[{"id":"a","kind":"must"}]`)); return err }()},
		{"classes no test column", func() error { _, err := parseClasses(strings.NewReader("class\tresult\tid\n")); return err }()},
		{"classes duplicate", func() error {
			_, err := parseClasses(strings.NewReader("class\tresult\ttest\ni\tfail\ta\nii\tfail\ta\n"))
			return err
		}()},
		{"classes no class", func() error {
			_, err := parseClasses(strings.NewReader("class\tresult\ttest\n\tfail\ta\n"))
			return err
		}()},
		{"classes empty", func() error { _, err := parseClasses(strings.NewReader("\n# only a comment\n")); return err }()},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestParseClassesColumns(t *testing.T) {
	// Columns are found by name, in any order; CRLF line ends are accepted.
	in := "test\tclass\tresult\r\nfoo\tii\tno\r\nbar\ti\r\n"
	got, err := parseClasses(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]class{"foo": {Class: "ii", Result: "no"}, "bar": {Class: "i"}}
	if len(got) != len(want) || got["foo"] != want["foo"] || got["bar"] != want["bar"] {
		t.Errorf("parseClasses = %+v, want %+v", got, want)
	}
}

// loadFixture reads testdata's results, tests and classes.
func loadFixture(t *testing.T) report {
	t.Helper()
	results, err := parseFile(filepath.Join("testdata", "results.json"), parseResults)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := parseFile(filepath.Join("testdata", "tests.json"), parseTests)
	if err != nil {
		t.Fatal(err)
	}
	classes, err := parseFile(filepath.Join("testdata", "classes.tsv"), parseClasses)
	if err != nil {
		t.Fatal(err)
	}
	return join(tests, results, classes)
}

func ids(ts []testResult) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestJoin(t *testing.T) {
	rep := loadFixture(t)

	wantCounts := map[string]kindCount{
		kindRequired: {Passed: 3, Total: 8, Untested: 1},
		kindOptimal:  {Passed: 0, Total: 3},
		kindCheck:    {Passed: 0, Total: 1},
	}
	if got := rep.counts(); len(got) != len(wantCounts) || got[kindRequired] != wantCounts[kindRequired] ||
		got[kindOptimal] != wantCounts[kindOptimal] || got[kindCheck] != wantCounts[kindCheck] {
		t.Errorf("counts = %+v, want %+v", got, wantCounts)
	}
	if want := []string{"new-test-not-in-list"}; !slices.Equal(rep.Unknown, want) {
		t.Errorf("Unknown = %q, want %q", rep.Unknown, want)
	}

	names, groups := rep.failingByClass(kindRequired)
	if want := []string{"i", "i-doc", "ii", "iii", "n/a", unclassified}; !slices.Equal(names, want) {
		t.Errorf("class names = %q, want %q", names, want)
	}
	wantGroups := map[string][]string{
		"i":          {"age-parse-large", "cc-resp-no-cache"},
		"iii":        {"heuristic-201-not_cached"},
		"n/a":        {"headers-store-Transfer-Encoding"},
		unclassified: {"vary-syntax-star"},
	}
	for _, n := range names {
		if got := ids(groups[n]); !slices.Equal(got, wantGroups[n]) {
			t.Errorf("required failures of class %s = %q, want %q", n, got, wantGroups[n])
		}
	}
	if g := groups["n/a"]; len(g) == 1 && g[0].Outcome != outSetupFail {
		t.Errorf("headers-store-Transfer-Encoding outcome = %q, want %q", g[0].Outcome, outSetupFail)
	}

	wantDiffs := []string{
		"other-age-update-expires (required, class ii): passes now; classified as fail",
		"partial-store-partial-complete (optimal, class i-doc): retry now; classified as optional_fail",
	}
	if got := rep.differences(); !slices.Equal(got, wantDiffs) {
		t.Errorf("differences =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantDiffs, "\n"))
	}
}

func TestFailingByClassOtherClasses(t *testing.T) {
	// A class outside classOrder gets its own group, after the known ones.
	rep := join(
		[]suiteTest{{ID: "a", Kind: kindRequired}, {ID: "b", Kind: kindRequired}},
		map[string]json.RawMessage{"a": json.RawMessage(`["Assertion","x"]`), "b": json.RawMessage(`["Assertion","y"]`)},
		map[string]class{"a": {Class: "wontfix", Result: "fail"}},
	)
	names, groups := rep.failingByClass(kindRequired)
	if want := []string{"i", "i-doc", "ii", "iii", "n/a", "wontfix", unclassified}; !slices.Equal(names, want) {
		t.Errorf("class names = %q, want %q", names, want)
	}
	if len(groups["wontfix"]) != 1 || len(groups[unclassified]) != 1 {
		t.Errorf("groups = %+v", groups)
	}
}

func TestReportMain(t *testing.T) {
	args := []string{"-results", "testdata/results.json", "-tests", "testdata/tests.json"}
	var out bytes.Buffer
	if err := reportMain(append(args, "-classes", "testdata/classes.tsv"), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"required 3/8 passed, 5 failed, 1 untested\n",
		"optimal  0/3 passed, 3 failed\n",
		"check    0/1 passed, 1 failed\n",
		"results for 1 tests not in the tests file (not counted): new-test-not-in-list\n",
		"  i            2\n",
		"  unclassified 1\n",
		"\ni (2):\n  freshness model:\n    age-parse-large                                    fail\n    cc-resp-no-cache",
		"\nunclassified (1):\n    vary-syntax-star                                   harness_fail\n",
		"failing optimal tests by class: i 0, i-doc 2, ii 0, iii 0, n/a 0, unclassified 1,\n",
		"differences from the classification: 4\n",
		"  status-404-fresh (optimal): optional_fail; not classified\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q; got:\n%s", want, out.String())
		}
	}

	// The classification lives outside the repository: a missing file is
	// reported, not fatal.
	out.Reset()
	missing := filepath.Join(t.TempDir(), "classes.tsv")
	if err := reportMain(append(args, "-classes", missing), &out); err != nil {
		t.Fatalf("missing classes file: %v", err)
	}
	if !strings.Contains(out.String(), "not found; every failure is unclassified") ||
		!strings.Contains(out.String(), "  unclassified 5\n") {
		t.Errorf("report without classes:\n%s", out.String())
	}

	if err := reportMain([]string{"-results", "testdata/results.json"}, &out); err == nil {
		t.Error("no error without -tests")
	}
}

package microcache

import (
	"cmp"
	"math"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzzers below check the cache-key and control-header parsers against
// independent reference definitions, built from net/url and net/http rather
// than from hash.go, so that a bug shared by both cannot hide.

// fuzzRequest builds the GET request a server would hand the middleware
// for host and target (escaped path plus "?query"), or nil when no server
// would accept it.
func fuzzRequest(host, path, query string, xfh string, hasXFH bool) *http.Request {
	if !validHost(host) || !strings.HasPrefix(path, "/") || !validTarget(path) || !validTarget(query) ||
		strings.ContainsAny(path, "?#") || strings.Contains(query, "#") {
		return nil
	}
	if hasXFH && !validHeaderValue(xfh) {
		return nil
	}
	target := path
	if query != "" {
		target += "?" + query
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || u.RawQuery != query {
		return nil
	}
	r := &http.Request{Method: http.MethodGet, URL: u, Host: host, Header: make(http.Header),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}
	if hasXFH {
		r.Header["X-Forwarded-Host"] = []string{xfh}
	}
	return r
}

// validHost mirrors golang.org/x/net/http/httpguts.ValidHostHeader, which
// net/http applies to every request's Host.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validTarget reports whether s may appear in a request line: visible
// ASCII only.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validHeaderValue mirrors httpguts.ValidHeaderFieldValue.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func swapASCIICase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

// refPair is one query pair as the reference sees it: decoded when
// url.QueryUnescape accepts both halves and it holds no ';', else verbatim.
type refPair struct {
	name, value string
	raw         bool
}

func refPairs(raw string) []refPair {
	var out []refPair
	for _, s := range strings.Split(raw, "&") {
		if s == "" {
			continue
		}
		n, v, _ := strings.Cut(s, "=")
		dn, err1 := url.QueryUnescape(n)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || strings.Contains(s, ";") {
			out = append(out, refPair{name: s, raw: true})
			continue
		}
		out = append(out, refPair{name: dn, value: dv})
	}
	return out
}

// queryMultiset is the sorted multiset of the pairs of raw, minus ignored
// names: two queries with different multisets say different things to any
// backend, so they must never share a key.
func queryMultiset(raw string, ignore []string) []string {
	var out []string
	for _, p := range refPairs(raw) {
		if !p.raw && slices.Contains(ignore, p.name) {
			continue
		}
		out = append(out, strconv.FormatBool(p.raw)+"\x00"+p.name+"\x00"+p.value)
	}
	slices.Sort(out)
	return out
}

// goQueryMultiset is what a net/http backend sees through r.URL.Query().
func goQueryMultiset(raw string, ignore []string) []string {
	vs, _ := url.ParseQuery(raw)
	var out []string
	for name, values := range vs {
		if slices.Contains(ignore, name) {
			continue
		}
		for _, v := range values {
			out = append(out, name+"\x00"+v)
		}
	}
	slices.Sort(out)
	return out
}

// reorderQuery moves pairs of different names around (reverse name order)
// while pairs of one name keep their relative order.
func reorderQuery(raw string) string {
	type item struct {
		s string
		p refPair
	}
	var items []item
	for _, s := range strings.Split(raw, "&") {
		if s == "" {
			continue
		}
		ps := refPairs(s)
		items = append(items, item{s, ps[0]})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := cmp.Compare(b.p.name, a.p.name); c != 0 {
			return c
		}
		switch {
		case a.p.raw == b.p.raw:
			return 0
		case a.p.raw:
			return -1
		}
		return 1
	})
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.s
	}
	return strings.Join(parts, "&")
}

func FuzzURLKey(f *testing.F) {
	type seed struct {
		host, path, query, xfh string
		hasXFH                 bool
		host2, path2, query2   string
		xfh2                   string
		hasXFH2                bool
	}
	for _, s := range []seed{
		{"example.com", "/", "", "", false, "Example.COM", "/", "", "", false},
		{"h", "/a", "a=1&b=2", "", false, "h", "/a", "b=2&a=1", "", false},
		{"h", "/a%2Fb", "", "", false, "h", "/a/b", "", "", false},
		{"h", "/a%2fb", "", "", false, "h", "/a%2Fb", "", "", false},
		{"h", "/", "a=1;b=2", "", false, "h", "/", "a=1&b=2", "", false},
		{"h", "/", "a=x%20y&utm=1", "", false, "h", "/", "a=x+y", "", false},
		{"h", "/", "a=1&a=2", "", false, "h", "/", "a=2&a=1", "", false},
		{"h", "/", "a%3Db=c", "evil", true, "h", "/", "a=b%3Dc", "", true},
		{"h:80", "/x", "%zz=1", "", true, "h:80", "/x", "%zz=2", "", false},
		{"[::1]:8080", "/%E2%82%AC", "q=%E2%82%AC", "a, b", true, "[::1]:8080", "/%e2%82%ac", "q=%e2%82%ac", "a,b", true},
	} {
		f.Add(s.host, s.path, s.query, s.xfh, s.hasXFH, s.host2, s.path2, s.query2, s.xfh2, s.hasXFH2)
	}
	ignore := []string{"utm"}
	m := New(Config{HashQuery: true, QueryIgnore: ignore})
	defer m.Stop()
	key := func(t *testing.T, r *http.Request) string {
		k, ok := m.urlKey(r)
		if !ok {
			t.Skip("key longer than maxKeySize")
		}
		return k
	}
	f.Fuzz(func(t *testing.T, host, path, query, xfh string, hasXFH bool, host2, path2, query2, xfh2 string, hasXFH2 bool) {
		r1 := fuzzRequest(host, path, query, xfh, hasXFH)
		r2 := fuzzRequest(host2, path2, query2, xfh2, hasXFH2)
		if r1 == nil || r2 == nil {
			t.Skip()
		}
		k1 := key(t, r1)

		// (a) Determinism, including through a deep copy.
		if k := key(t, r1); k != k1 {
			t.Fatalf("urlKey is not deterministic:\n%q\n%q", k1, k)
		}
		if k := key(t, r1.Clone(r1.Context())); k != k1 {
			t.Fatalf("urlKey differs on a clone:\n%q\n%q", k1, k)
		}

		// (b) Equivalent requests: host case and the order of params of
		// different names do not matter.
		if re := fuzzRequest(swapASCIICase(host), path, reorderQuery(query), xfh, hasXFH); re != nil {
			if k := key(t, re); k != k1 {
				t.Fatalf("equivalent request %q %q?%q gets another key than %q %q?%q:\n%q\n%q",
					re.Host, path, re.URL.RawQuery, host, path, query, k1, k)
			}
		}

		// (c) Requests a backend can tell apart never share a key.
		k2 := key(t, r2)
		var why []string
		if lowerASCII(r1.Host) != lowerASCII(r2.Host) {
			why = append(why, "host")
		}
		if r1.URL.EscapedPath() != r2.URL.EscapedPath() {
			why = append(why, "escaped path")
		}
		if r1.URL.Path != r2.URL.Path {
			why = append(why, "path")
		}
		if !slices.Equal(queryMultiset(query, ignore), queryMultiset(query2, ignore)) {
			why = append(why, "query pairs")
		}
		if !slices.Equal(goQueryMultiset(query, ignore), goQueryMultiset(query2, ignore)) {
			why = append(why, "url.Query()")
		}
		if hasXFH != hasXFH2 || (hasXFH && xfh != xfh2) {
			why = append(why, "X-Forwarded-Host")
		}
		if len(why) > 0 && k1 == k2 {
			t.Fatalf("requests differing in %v share key %q:\n1: %q %q?%q xfh=%q(%v)\n2: %q %q?%q xfh=%q(%v)",
				why, k1, host, path, query, xfh, hasXFH, host2, path2, query2, xfh2, hasXFH2)
		}
		if len(why) == 0 && lowerASCII(host) == lowerASCII(host2) && path == path2 && query == query2 && k1 != k2 {
			t.Fatalf("identical requests get different keys:\n%q\n%q", k1, k2)
		}
	})
}

// fullyEscape percent-encodes every byte of s: a different spelling of the
// same decoded value.
func fullyEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:]))
	}
	return b.String()
}

func FuzzObjectKey(f *testing.F) {
	type seed struct {
		header, hv1   string
		hasH1         bool
		hv2           string
		hasH2         bool
		param, qv1    string
		hasQ1         bool
		qv2           string
		hasQ2, escape bool
		other         string
	}
	for _, s := range []seed{
		{"Accept-Language", "en", true, "fr", true, "page", "1", true, "2", true, false, "x=1"},
		{"X-Tenant", "", true, "", false, "page", "", true, "", false, true, ""},
		{"x-tenant", "a", true, "a", true, "page", "1", true, "1", true, true, "page2=1"},
		{"X-V", "a,b", true, "a", true, "q", "x y", true, "x+y", true, false, "q2=x"},
		{"X-V", "1", true, "1", true, "a;b", "1", true, "1", true, false, "a=1;b=2"},
		{"X-V", "1", false, "1", false, "p", "&p=1", true, "", true, false, "utm=1"},
	} {
		f.Add(s.header, s.hv1, s.hasH1, s.hv2, s.hasH2, s.param, s.qv1, s.hasQ1, s.qv2, s.hasQ2, s.escape, s.other)
	}
	const urlKey = "p1:h1:/?0#---"
	f.Fuzz(func(t *testing.T, header, hv1 string, hasH1 bool, hv2 string, hasH2 bool,
		param, qv1 string, hasQ1 bool, qv2 string, hasQ2, escape bool, other string) {
		name := textproto.CanonicalMIMEHeaderKey(header)
		if name == "" || !validTarget(name) || strings.ContainsAny(name, ":") || param == "" ||
			!validHeaderValue(hv1) || !validHeaderValue(hv2) || !validTarget(other) || strings.Contains(other, "#") {
			t.Skip()
		}
		// other is extra query text that must not name the varied param;
		// clean is other without the pairs a key cannot decode.
		var clean []string
		hasRaw := false
		for _, s := range strings.Split(other, "&") {
			if s == "" {
				continue
			}
			p := refPairs(s)[0]
			if !p.raw && p.name == param {
				t.Skip()
			}
			if p.raw {
				hasRaw = true
			} else {
				clean = append(clean, s)
			}
		}
		o := &Options{Vary: []string{name}, VaryQuery: []string{param}}
		build := func(other, hv string, hasH bool, qv string, hasQ, esc bool) *http.Request {
			q := other
			if hasQ {
				pair := url.QueryEscape(param) + "=" + url.QueryEscape(qv)
				if esc {
					pair = fullyEscape(param) + "=" + fullyEscape(qv)
				}
				q = strings.TrimPrefix(q+"&"+pair, "&")
			}
			u := &url.URL{Path: "/", RawQuery: q}
			r := &http.Request{Method: http.MethodGet, URL: u, Host: "h", Header: make(http.Header)}
			if hasH {
				r.Header[name] = []string{hv}
			}
			return r
		}
		r1 := build(other, hv1, hasH1, qv1, hasQ1, false)
		r2 := build(other, hv2, hasH2, qv2, hasQ2, escape)
		k1, k2 := objectKey(urlKey, o, r1), objectKey(urlKey, o, r2)
		if k := objectKey(urlKey, o, r1); k != k1 {
			t.Fatalf("objectKey is not deterministic:\n%q\n%q", k1, k)
		}
		if !strings.HasPrefix(k1, urlKey) {
			t.Fatalf("object key %q does not extend the URL key", k1)
		}
		headerDiffers := hasH1 != hasH2 || (hasH1 && hv1 != hv2)
		queryDiffers := hasQ1 != hasQ2 || (hasQ1 && qv1 != qv2)
		if differs := headerDiffers || queryDiffers; differs == (k1 == k2) {
			t.Fatalf("header differs %v, query differs %v, but same key %v:\n1: %q=%q(%v) %q=%q(%v) -> %q\n2: %q=%q(%v) %q=%q(%v) -> %q",
				headerDiffers, queryDiffers, k1 == k2,
				name, hv1, hasH1, param, qv1, hasQ1, r1.URL.RawQuery,
				name, hv2, hasH2, param, qv2, hasQ2, r2.URL.RawQuery)
		}

		// A pair the key cannot decode (one with ';', which many backends
		// split on, or a bad escape) can carry the varied parameter past
		// the key ("parameter cloaking"): such a request must not share the
		// variant of the same request without it.
		if hasRaw {
			rc := build(strings.Join(clean, "&"), hv1, hasH1, qv1, hasQ1, false)
			if kc := objectKey(urlKey, o, rc); kc == k1 {
				t.Fatalf("query %q shares variant %q with %q: its undecodable pairs are unkeyed",
					r1.URL.RawQuery, k1, rc.URL.RawQuery)
			}
		}
	})
}

// sortedTraits returns t with its name lists sorted, since their order
// follows header map iteration.
func sortedTraits(t responseTraits) responseTraits {
	t.vary = slices.Sorted(slices.Values(t.vary))
	t.varyQuery = slices.Sorted(slices.Values(t.varyQuery))
	return t
}

func FuzzControlHeaders(f *testing.F) {
	for _, s := range [][4]string{
		{HeaderTTL, "30", HeaderStaleIfError, "500ms"},
		{"microcache-ttl", "-1", "MICROCACHE-STALE-WHILE-REVALIDATE", "9223372036854775807"},
		{"microcache-ttl", "9223372036", "microcache-ttl-x", "1"},
		{"Microcache-Nocache", "true", "Set-Cookie", "a=b"},
		{"microcache-vary", "x-a, X-B,,", "vary", "*, accept"},
		{"microcache-vary-query", " p , q", "cache-control", "Private=x"},
		{"Microcache-", "", "microcache-cache", " 1 "},
		{"microcache-ttl", "+07", "microcache-stale-if-error", "1h2m3.5s"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string) {
		// parseDuration on its own.
		for _, v := range []string{value1, value2, strings.TrimSpace(value1)} {
			d, ok := parseDuration(v)
			if ok && d < 0 {
				t.Fatalf("parseDuration(%q) = %v, ok", v, d)
			}
			if !ok && d != 0 {
				t.Fatalf("parseDuration(%q) = %v with ok false", v, d)
			}
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				want := n >= 0 && n <= math.MaxInt64/int64(time.Second)
				if ok != want || (ok && d != time.Duration(n)*time.Second) {
					t.Fatalf("parseDuration(%q) = %v, %v; want %ds, %v", v, d, ok, n, want)
				}
			} else if gd, err := time.ParseDuration(v); err == nil && gd >= 0 && (!ok || d != gd) {
				t.Fatalf("parseDuration(%q) = %v, %v; want %v", v, d, ok, gd)
			}
		}

		// readTraits never panics, and the case of names does not matter.
		// Names equal but for case would race on map order: skip them.
		if strings.EqualFold(name1, name2) {
			name2 = ""
		}
		h := http.Header{name1: {value1}}
		if name2 != "" {
			h[name2] = []string{value2}
		}
		base := sortedTraits(readTraits(h))
		for _, variant := range []func(string) string{swapASCIICase, lowerASCII, strings.ToUpper, textproto.CanonicalMIMEHeaderKey} {
			if strings.EqualFold(variant(name1), variant(name2)) && name2 != "" {
				continue
			}
			vh := http.Header{variant(name1): {value1}}
			if name2 != "" {
				vh[variant(name2)] = []string{value2}
			}
			if lowerASCII(variant(name1)) != lowerASCII(name1) || (name2 != "" && lowerASCII(variant(name2)) != lowerASCII(name2)) {
				continue // a Unicode case mapping changed the bytes: not the same name
			}
			if got := sortedTraits(readTraits(vh)); !reflect.DeepEqual(got, base) {
				t.Fatalf("names %q/%q and %q/%q give different traits:\n%+v\n%+v",
					name1, name2, variant(name1), variant(name2), base, got)
			}
		}

		// A duration header's traits agree with parseDuration.
		for n, v := range map[string]string{name1: value1, name2: value2} {
			if !strings.EqualFold(n, HeaderTTL) {
				continue
			}
			d, ok := parseDuration(strings.TrimSpace(v))
			if base.hasTTL != ok || base.ttl != d {
				t.Fatalf("%s: %q gives ttl %v, %v; parseDuration says %v, %v", n, v, base.ttl, base.hasTTL, d, ok)
			}
		}
	})
}

package acceptlang_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/acceptlang"
	"golang.org/x/text/language"
)

// absent stands for a request without an Accept-Language header.
const absent = "(absent)"

// browserHeaders are Accept-Language values as browsers and clients send
// them, with the language that Normalize(en, fr, de) should choose.
var browserHeaders = []struct{ header, want string }{
	{"en-US,en;q=0.9", "en"}, // Chrome, Edge, Safari in the US
	{"en-US,en;q=0.5", "en"}, // Firefox in the US
	{"en-US", "en"},
	{"en", "en"},
	{"en-us", "en"},
	{"en-GB,en;q=0.9", "en"},
	{"en-GB,en-US;q=0.9,en;q=0.8", "en"},
	{"en-CA,en;q=0.9,fr-CA;q=0.8,fr;q=0.7", "en"},
	{"en-AU,en;q=0.9", "en"},
	{"en-IN,en-GB;q=0.9,en-US;q=0.8,en;q=0.7,hi;q=0.6", "en"},
	{"fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"},
	{"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"},
	{"fr", "fr"},
	{"fr-BE,fr;q=0.9,nl;q=0.8,en;q=0.7", "fr"},
	{"fr-CA,fr;q=0.9", "fr"},
	{"de-DE", "de"},
	{"de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "de"},
	{"de-AT,de;q=0.9,en;q=0.8", "de"},
	{"de-CH,de;q=0.9,fr;q=0.8,it;q=0.7,en;q=0.6", "de"},
	{"de", "de"},
	{"de-de", "de"},
	{"en-IN", "en"}, // regional variants
	{"fr-CA", "fr"},
	{"de-AT", "de"},
	{"gsw-CH", "de"}, // close languages: Swiss German
	{"br", "fr"},     // Breton
	{"nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7", "en"},
	{"nl-BE,nl;q=0.9,fr;q=0.8", "fr"},
	{"pl-PL,pl;q=0.9,de;q=0.8,en;q=0.7", "de"},
	{"tr-TR,tr;q=0.9,de-DE;q=0.8,de;q=0.7,en-US;q=0.6,en;q=0.5", "de"},
	{"lb-LU,lb;q=0.9,fr;q=0.8,de;q=0.7", "fr"},
	{"es-ES,es;q=0.9", "en"}, // nothing matches: the default
	{"es-419,es;q=0.9,en;q=0.8", "en"},
	{"pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7", "en"},
	{"it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7,de;q=0.6", "en"},
	{"sv-SE,sv;q=0.9,en;q=0.8,de;q=0.6", "en"},
	{"ja,en-US;q=0.9,en;q=0.8", "en"},
	{"zh-CN,zh;q=0.9", "en"},
	{"zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7", "en"},
	{"ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "en"},
	{"en;q=0.8, fr", "fr"},             // the q-values decide, not the order
	{"de;q=0, fr;q=0.5", "fr"},         // q=0: not acceptable
	{"*", "en"},                        // any language: the default
	{"", "en"},                         // present, empty
	{absent, "en"},                     // no header (curl, bots)
	{"en-US,en;q=abc", "en"},           // malformed weight
	{"fr;q=abc", "en"},                 // malformed: the default, not a guess
	{"!!!", "en"},                      // not a language
	{"de-DE;q=0.9;;;", "en"},           // malformed too
	{"de-DE,,, de;q=0.9", "de"},        // empty entries are skipped
	{strings.Repeat("fr,", 300), "fr"}, // 900 bytes: still read
	{strings.Repeat("fr,", 400), "en"}, // over 1 KiB: not read, the default
}

func newRequest(acceptLanguage string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/page", nil)
	if acceptLanguage != absent {
		r.Header.Set("Accept-Language", acceptLanguage)
	}
	return r
}

// app answers with the Accept-Language value it got, varying on it.
var app = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Accept-Language")
	fmt.Fprintf(w, "lang=%q", r.Header.Get("Accept-Language"))
})

func TestChoice(t *testing.T) {
	h := acceptlang.Normalize(language.English, language.French, language.German)(app)
	for round := range 2 { // the second from the remembered choices
		for _, tc := range browserHeaders {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, newRequest(tc.header))
			if got, want := w.Body.String(), fmt.Sprintf("lang=%q", tc.want); got != want {
				t.Errorf("round %d: Accept-Language %q: the handler got %s, want %s", round+1, tc.header, got, want)
			}
		}
	}
}

// TestManyValues sends more distinct values than Normalize remembers,
// from several goroutines at once, twice: every answer stays right while
// remembered choices are replaced.
func TestManyValues(t *testing.T) {
	var wg sync.WaitGroup
	h := acceptlang.Normalize(language.English, language.French, language.German)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Accept-Language"))
	}))
	for g := range 4 {
		wg.Go(func() {
			for n := range 2000 {
				i := (n + g*250) % 1000
				if i == 500 {
					continue // a tie
				}
				// de weighs i/1000, fr 0.5.
				want := "fr"
				if i > 500 {
					want = "de"
				}
				header := fmt.Sprintf("de;q=0.%03d, fr;q=0.5", i)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, newRequest(header))
				if got := w.Body.String(); got != want {
					t.Errorf("Accept-Language %q: the handler got %q, want %q", header, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestVariants sends the browsers' mix through the cache alone, then
// through Normalize in front of it, and counts the stored variants.
func TestVariants(t *testing.T) {
	count := func(normalize bool) (variants, backend int) {
		driver := microcache.NewDriverLRU(1000)
		cache := microcache.New(microcache.Config{TTL: 3600e9, Exposed: true, Driver: driver})
		defer cache.Stop()
		calls := 0
		var h http.Handler = cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			app(w, r)
		}))
		if normalize {
			h = acceptlang.Normalize(language.English, language.French, language.German)(h)
		}
		for range 2 { // the second round is answered from the cache
			for _, tc := range browserHeaders {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, newRequest(tc.header))
				if normalize {
					if got, want := w.Body.String(), fmt.Sprintf("lang=%q", tc.want); got != want {
						t.Errorf("Accept-Language %q through the cache: body %s, want %s", tc.header, got, want)
					}
				}
			}
		}
		return driver.Len(), calls
	}
	before, backendBefore := count(false)
	after, backendAfter := count(true)
	t.Logf("%d distinct Accept-Language values, sent twice: %d stored variants (%d backend calls) with the cache alone, %d (%d backend calls) with Normalize(en, fr, de) in front",
		len(browserHeaders), before, backendBefore, after, backendAfter)
	if before < len(browserHeaders)-1 { // absent and empty may share a key
		t.Errorf("cache alone: %d variants, want about %d (is the handler varying?)", before, len(browserHeaders))
	}
	if after > 3 || backendAfter > 3 {
		t.Errorf("with Normalize: %d variants, %d backend calls; want at most 3 of each", after, backendAfter)
	}
}

// TestRequestNotModified guards the caller's request: its header map may
// be shared with other code, which must keep seeing the original value.
func TestRequestNotModified(t *testing.T) {
	var seen *http.Request
	h := acceptlang.Normalize(language.English, language.French)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = r
	}))
	r := newRequest("fr-CH, fr;q=0.9")
	r.Header.Add("Accept-Language", "de")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got := r.Header.Values("Accept-Language"); len(got) != 2 || got[0] != "fr-CH, fr;q=0.9" || got[1] != "de" {
		t.Errorf("the caller's header became %q", got)
	}
	if got := seen.Header.Values("Accept-Language"); len(got) != 1 || got[0] != "fr" {
		t.Errorf("the handler saw %q, want [fr]", got)
	}

	// Already normalised: the same request, untouched.
	r = newRequest("fr")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != r {
		t.Error("a request already carrying the chosen value was copied")
	}

	// A request without a header map.
	r = newRequest(absent)
	r.Header = nil
	h.ServeHTTP(httptest.NewRecorder(), r)
	if r.Header != nil || seen.Header.Get("Accept-Language") != "en" {
		t.Errorf("nil header: the caller's became %v, the handler saw %v", r.Header, seen.Header)
	}
}

// TestSeveralLines: a header sent on several lines is one list.
func TestSeveralLines(t *testing.T) {
	var got string
	h := acceptlang.Normalize(language.English, language.German)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Accept-Language")
	}))
	r := newRequest("fr;q=0.9")
	r.Header.Add("Accept-Language", "de;q=0.8, en;q=0.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "de" {
		t.Errorf("Accept-Language on two lines: the handler got %q, want de", got)
	}
}

// TestTagForms: the handler gets each supported tag's String form.
func TestTagForms(t *testing.T) {
	var got string
	h := acceptlang.Normalize(language.BritishEnglish, language.BrazilianPortuguese, language.EuropeanPortuguese)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Accept-Language")
	}))
	for header, want := range map[string]string{
		"pt-BR,pt;q=0.9": "pt-BR",
		"pt-PT":          "pt-PT",
		"en-US":          "en-GB",
		"ja":             "en-GB",
	} {
		h.ServeHTTP(httptest.NewRecorder(), newRequest(header))
		if got != want {
			t.Errorf("Accept-Language %q: the handler got %q, want %q", header, got, want)
		}
	}
}

func TestPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"no languages": func() { acceptlang.Normalize() },
		"nil handler":  func() { acceptlang.Normalize(language.English)(nil) },
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "acceptlang: ") {
					t.Errorf("%s: panic %q, want one starting \"acceptlang: \"", name, msg)
				}
			}()
			f()
		}()
	}
}

func BenchmarkNormalize(b *testing.B) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := acceptlang.Normalize(language.English, language.French, language.German)(next)
	for _, header := range []string{"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "en-US,en;q=0.9", "de"} {
		b.Run(header, func(b *testing.B) {
			r := newRequest(header)
			r.Header.Set("User-Agent", "Mozilla/5.0")
			r.Header.Set("Accept", "text/html")
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(nil, r)
			}
		})
	}
}

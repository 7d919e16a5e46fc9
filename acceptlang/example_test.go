package acceptlang_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/acceptlang"
	"golang.org/x/text/language"
)

func ExampleNormalize() {
	cache := microcache.New(microcache.Config{TTL: time.Minute, Exposed: true})
	defer cache.Stop()

	greetings := map[string]string{"en": "Hello", "fr": "Bonjour", "de": "Hallo"}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := r.Header.Get("Accept-Language") // "en", "fr" or "de"
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Content-Language", lang)
		fmt.Fprint(w, greetings[lang])
	})
	// Outside the cache, so that the cache keys on the rewritten header.
	h := acceptlang.Normalize(language.English, language.French, language.German)(cache.Middleware(app))

	for _, header := range []string{
		"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5",
		"fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
		"de-AT,de;q=0.9",
		"es-ES,es;q=0.9",
		"en-US,en;q=0.9",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%-45s %-4s %s\n", header, w.Header().Get("Microcache"), w.Body)
	}
	// Output:
	// fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5  MISS Bonjour
	// fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7           HIT  Bonjour
	// de-AT,de;q=0.9                                MISS Hallo
	// es-ES,es;q=0.9                                MISS Hello
	// en-US,en;q=0.9                                HIT  Hello
}

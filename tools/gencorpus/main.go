// Command gencorpus writes the JSON corpus that the compressor tests,
// benchmarks and tools/compare_compression measure against:
//
//	api-item-1k.json    one product object, about 1 KiB
//	api-list-10k.json   one page of a product listing, about 10 KiB
//	feed-100k.json      an activity feed, about 100 KiB
//
// Usage:
//
//	go run ./tools/gencorpus [-out testdata/corpus]
//
// The output is deterministic: every file comes from a fixed seed and the
// built-in word lists below, so rerunning the command reproduces the
// committed files byte for byte.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", filepath.Join("testdata", "corpus"), "directory to write the corpus to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gencorpus:", err)
		os.Exit(1)
	}
}

// run writes every corpus file into dir, creating dir if needed.
func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		gen  func(*gen) any
	}{
		{"api-item-1k.json", itemDoc},
		{"api-list-10k.json", listDoc},
		{"feed-100k.json", feedDoc},
	}
	for i, f := range files {
		// One seed per file, so changing one generator leaves the other
		// files unchanged.
		g := &gen{r: rand.New(rand.NewPCG(20250115, uint64(i+1)))}
		b, err := json.Marshal(f.gen(g))
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		b = append(b, '\n')
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Target sizes of the generated documents. Generation stops at the first
// element that takes a document to its target, so files end slightly over.
const (
	itemTarget = 1 << 10
	listTarget = 10 << 10
	feedTarget = 100 << 10
)

// epoch is the fixed "now" the timestamps are drawn before.
var epoch = time.Date(2025, time.January, 15, 9, 30, 0, 0, time.UTC)

// Word lists. They are small on purpose: real API payloads repeat a limited
// vocabulary, which is what the compressors exploit.
var (
	adjectives = []string{"compact", "classic", "rugged", "everyday", "premium", "lightweight", "modular", "vintage", "wireless", "foldable", "insulated", "adjustable", "ergonomic", "waterproof", "minimal", "heavy-duty"}
	materials  = []string{"oak", "steel", "linen", "wool", "bamboo", "ceramic", "leather", "aluminium", "walnut", "cotton", "glass", "copper"}
	nouns      = []string{"desk lamp", "backpack", "kettle", "chair", "notebook", "headphones", "water bottle", "jacket", "planter", "keyboard", "tent", "skillet", "blanket", "speaker", "watch", "umbrella"}
	categories = [][]string{{"home", "lighting"}, {"home", "kitchen"}, {"outdoor", "camping"}, {"electronics", "audio"}, {"electronics", "accessories"}, {"apparel", "outerwear"}, {"office", "furniture"}, {"office", "stationery"}}
	tags       = []string{"new", "sale", "bestseller", "eco", "gift", "limited", "bundle", "clearance", "handmade", "imported", "staff-pick", "back-in-stock"}
	colors     = []string{"black", "white", "sand", "olive", "navy", "rust", "slate", "cream"}
	warehouses = []string{"ams-1", "fra-2", "iad-1", "sfo-3", "nrt-1"}
	firstNames = []string{"Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jonas", "Keiko", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoltan"}
	lastNames  = []string{"Almeida", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Ito", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Rossi", "Silva", "Tanaka", "Weber"}
	words      = []string{"the", "a", "this", "my", "our", "new", "old", "great", "small", "quick", "really", "just", "finally", "still", "again", "never", "always", "today", "yesterday", "weekend", "morning", "evening", "release", "update", "build", "deploy", "review", "design", "draft", "photo", "trip", "garden", "coffee", "recipe", "bike", "river", "city", "market", "concert", "project", "team", "meeting", "idea", "plan", "launch", "fixed", "shipped", "tried", "loved", "found", "shared", "started", "finished", "learned", "works", "looks", "feels", "better", "faster", "cleaner", "quieter", "brighter", "with", "for", "after", "before", "during", "without", "about", "around", "and", "but", "so", "because", "while", "is", "was", "are", "were", "will", "can", "should", "might"}
	activities = []string{"post", "comment", "like", "share", "follow", "purchase", "review", "mention"}
	reactions  = []string{"like", "love", "laugh", "wow", "sad", "clap"}
)

// gen draws values from one deterministic random stream.
type gen struct{ r *rand.Rand }

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for range n {
		b.WriteByte(digits[g.r.IntN(len(digits))])
	}
	return b.String()
}

// timeBefore returns an RFC 3339 timestamp up to maxAge before epoch.
func (g *gen) timeBefore(maxAge time.Duration) string {
	return epoch.Add(-time.Duration(g.r.Int64N(int64(maxAge)))).Truncate(time.Second).Format(time.RFC3339)
}

// sentence returns lo to hi words, capitalised and ended with a period.
func (g *gen) sentence(lo, hi int) string {
	n := lo + g.r.IntN(hi-lo+1)
	ws := make([]string, n)
	for i := range ws {
		ws[i] = g.pick(words)
	}
	s := strings.Join(ws, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func (g *gen) pickTags(max int) []string {
	n := 1 + g.r.IntN(max)
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		if t := g.pick(tags); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

type money struct {
	Amount   int    `json:"amount"` // minor units
	Currency string `json:"currency"`
}

type category struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Path []string `json:"path"`
}

type image struct {
	URL    string `json:"url"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Alt    string `json:"alt"`
}

type variant struct {
	SKU   string `json:"sku"`
	Color string `json:"color"`
	Price money  `json:"price"`
	Stock int    `json:"stock"`
}

type product struct {
	ID          string   `json:"id"`
	SKU         string   `json:"sku"`
	Name        string   `json:"name"`
	Slug        string   `json:"slug"`
	Description string   `json:"description"`
	Price       money    `json:"price"`
	CompareAt   *money   `json:"compare_at_price"`
	Tags        []string `json:"tags"`
	Category    category `json:"category"`
	Inventory   struct {
		InStock   bool   `json:"in_stock"`
		Quantity  int    `json:"quantity"`
		Warehouse string `json:"warehouse"`
	} `json:"inventory"`
	Rating struct {
		Average float64 `json:"average"`
		Count   int     `json:"count"`
	} `json:"rating"`
	Images    []image   `json:"images"`
	Variants  []variant `json:"variants,omitempty"`
	CreatedAt string    `json:"created_at"`
	UpdatedAt string    `json:"updated_at"`
}

func (g *gen) product(n int) product {
	var p product
	p.ID = fmt.Sprintf("prd_%06d", 100000+n*37+g.r.IntN(37))
	p.SKU = strings.ToUpper(g.hex(3)) + "-" + fmt.Sprint(1000+g.r.IntN(9000))
	p.Name = fmt.Sprintf("%s %s %s", g.pick(adjectives), g.pick(materials), g.pick(nouns))
	p.Name = strings.ToUpper(p.Name[:1]) + p.Name[1:]
	p.Slug = strings.ReplaceAll(strings.ToLower(p.Name), " ", "-")
	p.Description = g.sentence(8, 20)
	p.Price = money{Amount: 499 + 100*g.r.IntN(300), Currency: "EUR"}
	if g.r.IntN(3) == 0 {
		p.CompareAt = &money{Amount: p.Price.Amount + 100*(1+g.r.IntN(20)), Currency: "EUR"}
	}
	p.Tags = g.pickTags(3)
	path := categories[g.r.IntN(len(categories))]
	p.Category = category{ID: "cat_" + g.hex(6), Name: path[len(path)-1], Path: path}
	p.Inventory.Quantity = g.r.IntN(250)
	p.Inventory.InStock = p.Inventory.Quantity > 0
	p.Inventory.Warehouse = g.pick(warehouses)
	p.Rating.Average = float64(30+g.r.IntN(21)) / 10
	p.Rating.Count = g.r.IntN(2000)
	for i := range 1 + g.r.IntN(2) {
		p.Images = append(p.Images, image{
			URL:    fmt.Sprintf("https://cdn.example.com/img/%s/%d-%s.jpg", p.ID, i, g.hex(8)),
			Width:  800,
			Height: 600 + 200*g.r.IntN(3),
			Alt:    p.Name,
		})
	}
	created := g.timeBefore(3 * 365 * 24 * time.Hour)
	updated := g.timeBefore(30 * 24 * time.Hour)
	p.CreatedAt, p.UpdatedAt = created, max(created, updated)
	return p
}

// itemDoc is a single product as a "GET /v1/products/{id}" would return it,
// with variants added until it reaches itemTarget.
func itemDoc(g *gen) any {
	p := g.product(0)
	for size(p) < itemTarget {
		p.Variants = append(p.Variants, variant{
			SKU:   fmt.Sprintf("%s-%02d", p.SKU, len(p.Variants)+1),
			Color: g.pick(colors),
			Price: p.Price,
			Stock: g.r.IntN(80),
		})
	}
	return p
}

type page struct {
	Data       []product `json:"data"`
	Pagination struct {
		Page    int    `json:"page"`
		PerPage int    `json:"per_page"`
		Total   int    `json:"total"`
		Next    string `json:"next"`
		Prev    string `json:"prev"`
	} `json:"pagination"`
	Meta struct {
		RequestID   string `json:"request_id"`
		GeneratedAt string `json:"generated_at"`
	} `json:"meta"`
}

// listDoc is one page of "GET /v1/products", with products added until it
// reaches listTarget.
func listDoc(g *gen) any {
	var d page
	d.Meta.RequestID = "req_" + g.hex(24)
	d.Meta.GeneratedAt = epoch.Format(time.RFC3339)
	for size(d) < listTarget {
		d.Data = append(d.Data, g.product(len(d.Data)))
		n := len(d.Data)
		d.Pagination.Page = 3
		d.Pagination.PerPage = n
		d.Pagination.Total = 40 * n
		d.Pagination.Next = fmt.Sprintf("/v1/products?page=4&per_page=%d", n)
		d.Pagination.Prev = fmt.Sprintf("/v1/products?page=2&per_page=%d", n)
	}
	return d
}

type user struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	AvatarURL   string `json:"avatar_url"`
	Verified    bool   `json:"verified"`
}

type activity struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Actor  user   `json:"actor"`
	Object struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"object"`
	Text       string         `json:"text"`
	Mentions   []string       `json:"mentions"`
	Reactions  map[string]int `json:"reactions"` // encoding/json sorts map keys
	Visibility string         `json:"visibility"`
	CreatedAt  string         `json:"created_at"`
}

type feed struct {
	Items   []activity `json:"items"`
	Cursor  string     `json:"cursor"`
	HasMore bool       `json:"has_more"`
}

func (g *gen) user() user {
	first, last := g.pick(firstNames), g.pick(lastNames)
	name := strings.ToLower(first + "_" + last)
	return user{
		ID:          "usr_" + g.hex(10),
		Username:    name,
		DisplayName: first + " " + last,
		AvatarURL:   "https://cdn.example.com/avatars/" + name + ".png",
		Verified:    g.r.IntN(5) == 0,
	}
}

// feedDoc is a page of "GET /v1/feed", with activities added until it reaches
// feedTarget. Keys repeat on every item while the text varies.
func feedDoc(g *gen) any {
	var f feed
	users := make([]user, 40)
	for i := range users {
		users[i] = g.user()
	}
	for size(f) < feedTarget {
		var a activity
		a.ID = "act_" + g.hex(16)
		a.Type = g.pick(activities)
		a.Actor = users[g.r.IntN(len(users))]
		a.Object.Type = "post"
		a.Object.ID = "pst_" + g.hex(12)
		a.Object.Title = g.sentence(3, 8)
		a.Object.URL = "https://social.example.com/p/" + a.Object.ID
		a.Text = g.sentence(6, 40)
		a.Mentions = []string{}
		for range g.r.IntN(3) {
			a.Mentions = append(a.Mentions, "@"+users[g.r.IntN(len(users))].Username)
		}
		a.Reactions = map[string]int{}
		for range g.r.IntN(4) {
			a.Reactions[g.pick(reactions)] += 1 + g.r.IntN(500)
		}
		a.Visibility = []string{"public", "public", "public", "followers", "private"}[g.r.IntN(5)]
		a.CreatedAt = g.timeBefore(7 * 24 * time.Hour)
		f.Items = append(f.Items, a)
	}
	// Newest first, as feeds are served. RFC 3339 UTC strings sort as times.
	slices.SortStableFunc(f.Items, func(a, b activity) int { return strings.Compare(b.CreatedAt, a.CreatedAt) })
	f.Cursor = "cur_" + g.hex(32)
	f.HasMore = true
	return f
}

// size is the length of v's JSON encoding. It panics if v cannot be encoded,
// which for the types above would be a bug in this program.
func size(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return len(b)
}

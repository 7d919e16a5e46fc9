// Command fleet demonstrates the shared tier: three replicas of one
// service, each with its own microcache and its own redisdriver.Driver,
// share one Redis server. It starts a redis-server of its own on a unix
// socket (redis-server must be installed: apt-get install redis-server),
// serves the replicas on loopback, walks through what the shared tier
// does, printing each request and its answer, and exits.
//
//	go run ./examples/fleet           # the walkthrough, then exit
//	go run ./examples/fleet -serve    # then keep serving, for curl, until ^C
//
// Replicas share what they store for requests with the same Host header,
// as behind a load balancer: the walkthrough sends "Host: www.example" to
// each replica's own address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func main() {
	serve := flag.Bool("serve", false, "keep serving after the walkthrough, until interrupted")
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *serve); err != nil {
		log.Print("fleet: ", err)
		os.Exit(1)
	}
}

// origin is the service behind the caches: GET answers the page's current
// version, POST changes it; it counts GET calls.
type origin struct {
	version atomic.Int64
	calls   atomic.Int64
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		o.version.Add(1)
		io.WriteString(w, "updated\n")
		return
	}
	n := o.calls.Add(1)
	if strings.HasPrefix(r.URL.Path, "/slow") {
		time.Sleep(100 * time.Millisecond) // a slow page: concurrent misses pile up
	}
	fmt.Fprintf(w, "%s version %d (origin call %d)\n", r.URL.Path, o.version.Load()+1, n)
}

func run(ctx context.Context, keepServing bool) error {
	dir, err := os.MkdirTemp("", "fleet")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := redistest.Start(dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("redis-server (%s) on %s\n\n", redistest.Binary(), srv.Socket)

	o := &origin{}
	var urls []string
	var servers []*http.Server
	for i := range 3 {
		// Configure the client with short timeouts and no retries: the
		// driver bounds each call itself (100ms), and the client's own
		// timeouts bound how long an abandoned call holds a connection.
		client := redis.NewClient(&redis.Options{
			Network: "unix", Addr: srv.Socket,
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
			WriteTimeout: 200 * time.Millisecond, PoolTimeout: 200 * time.Millisecond,
			ContextTimeoutEnabled: true, MaxRetries: -1,
		})
		defer client.Close()
		driver := redisdriver.New(client, redisdriver.Options{Prefix: "fleet-demo:"})
		defer driver.Close()
		cache := microcache.New(microcache.Config{
			TTL:                 time.Minute,
			CollapsedForwarding: true,
			Exposed:             true,
			Driver:              driver,
		})
		defer cache.Stop()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: cache.Middleware(o), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		servers = append(servers, hs)
		urls = append(urls, "http://"+ln.Addr().String())
		fmt.Printf("replica %d: %s\n", i+1, urls[i])
		for !driver.Subscribed() { // purges reach this replica from now on
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Println()
	hc := &http.Client{Timeout: 5 * time.Second}
	req := func(method string, replica int, path string) (status, body string, err error) {
		r, err := http.NewRequestWithContext(ctx, method, urls[replica]+path, nil)
		if err != nil {
			return "", "", err
		}
		// The Host is part of the cache key: behind a load balancer every
		// replica sees the service's public name, not its own address.
		r.Host = "www.example"
		res, err := hc.Do(r)
		if err != nil {
			return "", "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.Header.Get(microcache.HeaderStatus), strings.TrimSpace(string(b)), err
	}
	show := func(method string, replica int, path string) (status, body string, err error) {
		status, body, err = req(method, replica, path)
		if err != nil {
			return "", "", err
		}
		if status == "" || method != http.MethodGet {
			status = "-"
		}
		fmt.Printf("  %-4s %s on replica %d  -> %-4s %s\n", method, path, replica+1, status, body)
		return status, body, nil
	}

	fmt.Println("1. One replica fetches the page; the others answer from what it stored in Redis.")
	for i, want := range []string{"MISS", "HIT", "HIT"} {
		status, _, err := show("GET", i, "/page")
		if err != nil {
			return err
		}
		if status != want {
			return fmt.Errorf("replica %d answered %s, want %s", i+1, status, want)
		}
	}

	fmt.Println("\n2. A POST to one replica purges the page on every replica.")
	if _, _, err := show("POST", 1, "/page"); err != nil {
		return err
	}
	answered := time.Now()
	for _, i := range []int{0, 2, 1} {
		// The purge reaches the other replicas by pub/sub, within
		// milliseconds: a GET sent in the same instant may still get the
		// old version from its replica's memory, so look for up to 200ms.
		for {
			status, body, err := req("GET", i, "/page")
			if err != nil {
				return err
			}
			if strings.Contains(body, "version 2") {
				fmt.Printf("  %-4s %s on replica %d  -> %-4s %s\n", "GET", "/page", i+1, status, body)
				break
			}
			if time.Since(answered) > 200*time.Millisecond {
				return errors.New("old content still served 200ms after the purge")
			}
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Printf("  (every replica served the new version within %v of the POST's answer)\n", time.Since(answered).Round(time.Millisecond))

	fmt.Println("\n3. Thirty concurrent cold requests, spread over the three replicas, make one origin call.")
	before := o.calls.Load()
	var wg sync.WaitGroup
	statuses := make(map[string]int)
	var mu sync.Mutex
	var firstErr error
	for i := range 30 {
		wg.Go(func() {
			status, _, err := req("GET", i%3, "/slow")
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			statuses[status]++
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("  30 x GET /slow over replicas 1-3  -> %d MISS (the leader's replica: one call, shared), %d HIT; origin calls: %d\n",
		statuses["MISS"], statuses["HIT"], o.calls.Load()-before)
	if n := o.calls.Load() - before; n != 1 {
		return fmt.Errorf("%d origin calls for 30 cold requests, want 1", n)
	}

	if keepServing {
		fmt.Printf("\nServing until interrupted. Try:\n  curl -i -H 'Host: www.example' %s/page\n  curl -i -H 'Host: www.example' -X POST %s/page\n  curl -i -H 'Host: www.example' %s/page\n", urls[0], urls[1], urls[2])
		<-ctx.Done()
	}
	fmt.Println("\nDone: stopping the replicas and redis-server.")
	for _, hs := range servers {
		hs.Shutdown(context.Background())
	}
	return nil
}

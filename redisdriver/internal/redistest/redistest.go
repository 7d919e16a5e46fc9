// Package redistest starts throwaway redis-server processes for the tests
// and the example of package redisdriver: each listens on a unix socket
// in its own directory, with persistence off, and is stopped by its pid.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoServer is returned by Start when neither redis-server nor
// valkey-server is on the PATH.
var ErrNoServer = errors.New("redistest: redis-server not found on PATH (install Debian's redis-server package: apt-get install -y redis-server)")

// Binary returns the path of the server binary, redis-server or else
// valkey-server, or "" when neither is installed.
func Binary() string {
	for _, name := range []string{"redis-server", "valkey-server"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Server is one running server process. Its methods are not safe for
// concurrent use.
type Server struct {
	Socket string // the unix socket path
	dir    string
	bin    string
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has been waited for
}

// Start starts a server in dir (which must exist), waits until it answers
// PING, and returns it. The caller must call Stop.
func Start(dir string) (*Server, error) {
	bin := Binary()
	if bin == "" {
		return nil, ErrNoServer
	}
	s := &Server{Socket: filepath.Join(dir, "redis.sock"), dir: dir, bin: bin}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	s.cmd = exec.Command(s.bin,
		"--port", "0",
		"--unixsocket", s.Socket,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--databases", "1",
		"--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--enable-debug-command", "local", // DEBUG SLEEP makes it slow
	)
	// Its own process group: a terminal's ^C is the caller's to forward.
	// Killed with the process that started it, should that die first.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("redistest: starting %s: %w", s.bin, err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redistest: %s exited at start (see %s)", s.bin, filepath.Join(s.dir, "redis.log"))
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redistest: %s did not answer PING within 10s: %v", s.bin, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Client returns a new client for the server configured as redisdriver's
// documentation recommends: short timeouts, no retries.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Network:               "unix",
		Addr:                  s.Socket,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		WriteTimeout:          200 * time.Millisecond,
		PoolTimeout:           200 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
}

// Pid returns the process id of the running server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the server (SIGSTOP and SIGCONT hang and resume it).
func (s *Server) Signal(sig syscall.Signal) error { return s.cmd.Process.Signal(sig) }

// Kill kills the server and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies on SIGKILL anyway; be explicit
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	os.Remove(s.Socket)
}

// Restart kills the server and starts a new one, empty, on the same socket.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// Stop stops the server. It is safe to call more than once.
func (s *Server) Stop() { s.Kill() }

// StartT starts a server in a test's temporary directory and stops it in
// t.Cleanup. Without a server binary it skips the test, or fails it when
// the environment variable CI is "true".
func StartT(t testing.TB) *Server {
	t.Helper()
	if Binary() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(ErrNoServer)
		}
		t.Skip(ErrNoServer)
	}
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Cluster is a Redis Cluster of three primaries on loopback TCP ports.
type Cluster struct {
	Addrs []string
	procs []*exec.Cmd
}

// StartClusterT starts a three-node cluster in a test's temporary
// directory, with persistence off, and stops it in t.Cleanup. It skips
// (or fails with CI=true) as StartT does, and also without redis-cli.
func StartClusterT(t testing.TB) *Cluster {
	t.Helper()
	bin := Binary()
	cli, _ := exec.LookPath("redis-cli")
	if cli == "" {
		cli, _ = exec.LookPath("valkey-cli")
	}
	if bin == "" || cli == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(ErrNoServer)
		}
		t.Skip(ErrNoServer)
	}
	dir := t.TempDir()
	c := &Cluster{}
	t.Cleanup(c.stop)
	for len(c.Addrs) < 3 {
		port := freePortPair(t)
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--loglevel", "warning", "--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
		)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.procs = append(c.procs, cmd)
		c.Addrs = append(c.Addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for _, a := range c.Addrs {
		waitPing(t, redis.NewClient(&redis.Options{Addr: a}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range c.Addrs {
		cl := redis.NewClient(&redis.Options{Addr: a})
		for {
			info, _ := cl.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok within 20s: %s", info)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cl.Close()
	}
	return c
}

func (c *Cluster) stop() {
	for _, p := range c.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// freePortPair returns a loopback port that is free, as is the port
// 10000 above it (the cluster bus).
func freePortPair(t testing.TB) int {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		if b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000)); err == nil {
			b.Close()
			return port
		}
	}
	t.Fatal("no free port pair")
	return 0
}

func waitPing(t testing.TB, c *redis.Client) {
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("cluster node did not answer PING within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Client returns a cluster client configured as redisdriver's
// documentation recommends.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 c.Addrs,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		WriteTimeout:          200 * time.Millisecond,
		PoolTimeout:           200 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
}

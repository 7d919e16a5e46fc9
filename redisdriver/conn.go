package redisdriver

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// conn is every Redis operation the driver makes. It is kept this small so
// that a client other than go-redis (rueidis, valkey-go) needs only an
// adapter of a few dozen lines. Every method may block: the driver bounds
// each call itself (see Driver.call).
type conn interface {
	// eval runs s with EVALSHA, loading it with EVAL on NOSCRIPT, and
	// returns its reply: int64, string, nil, or []any of those.
	eval(ctx context.Context, s *script, keys []string, args ...any) (any, error)
	// mget reads keys; a missing key reads as nil.
	mget(ctx context.Context, keys ...string) ([]any, error)
	// exists reports whether key exists.
	exists(ctx context.Context, key string) (bool, error)
	// del deletes keys.
	del(ctx context.Context, keys ...string) error
	// ping checks that the server answers.
	ping(ctx context.Context) error
	// subscribe starts a subscription to channel; it connects lazily.
	subscribe(ctx context.Context, channel string) subscription
	// boundsCalls reports whether every call returns by its context's
	// deadline.
	boundsCalls() bool
	// cluster reports whether the server is a Redis Cluster: then one
	// script may touch one slot only.
	cluster() bool
	// members returns the members of the set under key.
	members(ctx context.Context, key string) ([]string, error)
	// publish publishes msg on channel.
	publish(ctx context.Context, channel, msg string) error
}

// subscription is one pub/sub connection.
type subscription interface {
	// receive waits for the next event; close ends the wait with an
	// error.
	receive(ctx context.Context) (subEvent, error)
	// ping asks the server for a pong event.
	ping(ctx context.Context) error
	close() error
}

// subEvent kinds.
const (
	evSubscribed = iota // the subscription is (again) in place
	evMessage
	evPong
)

type subEvent struct {
	kind    int
	payload string
}

// script is a Lua script and its SHA-1, the name EVALSHA knows it by.
type script struct {
	src  string
	hash string
}

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{src: src, hash: hex.EncodeToString(h[:])}
}

// goRedis adapts a go-redis client.
type goRedis struct{ c redis.UniversalClient }

// boundsCalls reports whether c ends a call at its context's deadline
// (ContextTimeoutEnabled): then the driver need not run each call on a
// goroutine of its own to stop waiting for it.
func (g goRedis) boundsCalls() bool {
	switch c := g.c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

func (g goRedis) eval(ctx context.Context, s *script, keys []string, args ...any) (any, error) {
	v, err := g.c.EvalSha(ctx, s.hash, keys, args...).Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		v, err = g.c.Eval(ctx, s.src, keys, args...).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return v, err
}

func (g goRedis) cluster() bool {
	_, ok := g.c.(*redis.ClusterClient)
	return ok
}

func (g goRedis) members(ctx context.Context, key string) ([]string, error) {
	return g.c.SMembers(ctx, key).Result()
}

func (g goRedis) publish(ctx context.Context, channel, msg string) error {
	return g.c.Publish(ctx, channel, msg).Err()
}

func (g goRedis) mget(ctx context.Context, keys ...string) ([]any, error) {
	return g.c.MGet(ctx, keys...).Result()
}

func (g goRedis) exists(ctx context.Context, key string) (bool, error) {
	n, err := g.c.Exists(ctx, key).Result()
	return n > 0, err
}

func (g goRedis) del(ctx context.Context, keys ...string) error { return g.c.Del(ctx, keys...).Err() }

func (g goRedis) ping(ctx context.Context) error { return g.c.Ping(ctx).Err() }

func (g goRedis) subscribe(ctx context.Context, channel string) subscription {
	return goRedisSub{g.c.Subscribe(ctx, channel)}
}

type goRedisSub struct{ ps *redis.PubSub }

func (s goRedisSub) receive(ctx context.Context) (subEvent, error) {
	v, err := s.ps.Receive(ctx)
	if err != nil {
		return subEvent{}, err
	}
	switch v := v.(type) {
	case *redis.Subscription:
		return subEvent{kind: evSubscribed}, nil
	case *redis.Message:
		return subEvent{kind: evMessage, payload: v.Payload}, nil
	case *redis.Pong:
		return subEvent{kind: evPong}, nil
	}
	return subEvent{kind: evPong}, nil // anything else shows the connection is alive
}

func (s goRedisSub) ping(ctx context.Context) error { return s.ps.Ping(ctx) }

func (s goRedisSub) close() error { return s.ps.Close() }

// isServerReply reports whether err is an error reply from the server
// (OOM, WRONGTYPE, a script error): the server answered, so it does not
// count against the circuit breaker.
func isServerReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

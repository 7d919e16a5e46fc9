package microcache

import (
	"context"
	"net/http"
)

// revalidate starts a background refresh of lk's object, unless one is
// under way. It returns false, starting nothing, once the Microcache is
// stopped: the caller then refreshes in the foreground.
func (m *Microcache) revalidate(next http.Handler, r *http.Request, lk *lookup) bool {
	objKey := lk.objectKey()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return false
	}
	if _, busy := m.revalidating[objKey]; busy {
		return true
	}
	if m.abandoned[objKey] > 0 {
		// A refresh (or miss) abandoned after a Timeout still runs for
		// this object: another would hang the same way. Serve stale.
		return true
	}
	if len(m.revalidating) >= m.cfg.MaxRevalidations {
		// Serve stale without a refresh: the next request for the object
		// tries again.
		m.count(revalidationsSkipped)
		return true
	}
	m.revalidating[objKey] = struct{}{}
	m.background.Add(1)

	// The background request keeps the client's context values but not its
	// cancellation; Stop cancels it. It is a deep copy, since the client's
	// request may be reused once its handler returns.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(m.stopCtx, cancel)
	bg := forwardable(r.Clone(ctx))
	bg.Body = http.NoBody
	bg.Method = http.MethodGet // a HEAD in the stale window refreshes the GET object
	plan := lk.plan()
	plan.fallbackBody = nil // the client's buffer; the refresh never replays the fallback
	plan.background = true
	go func() {
		defer m.background.Done()
		defer func() {
			stop()
			cancel()
			m.mu.Lock()
			delete(m.revalidating, objKey)
			m.mu.Unlock()
		}()
		if m.leaser != nil {
			// One process of a fleet refreshes; the others keep serving
			// the stale object until its result is stored.
			release, held, err := m.leaser.Lease(bg.Context(), objKey, m.leaseTTL())
			if err != nil {
				m.driverFailed(bg, err)
			} else if !held {
				return
			} else {
				defer release()
			}
		}
		m.commit(bg, m.fetch(next, bg, &plan, nil))
	}()
	return true
}

// goTracked runs f on a new goroutine that Stop waits for, or untracked
// once the Microcache is stopped (Stop no longer waits then, so that no
// WaitGroup.Add can race with its Wait).
func (m *Microcache) goTracked(f func()) {
	m.mu.Lock()
	tracked := m.running
	if tracked {
		m.background.Add(1)
	}
	m.mu.Unlock()
	go func() {
		if tracked {
			defer m.background.Done()
		}
		f()
	}()
}

package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// storePool holds one open store per canonical storage directory. Caddy
// provisions a new config before it cleans up the old one, and `caddy
// validate` provisions too, so a database must never be opened per
// Provision: every handler takes a reference here and gives it back in
// Cleanup; the last one out closes the database.
var storePool = caddy.NewUsagePool()

// sharedStore is the pooled value: the store plus the in-process registry
// that lets concurrent duplicates wait for the first copy's outcome. Its
// Claim, Complete, Release, Get and Scan bound and guard the calls into the
// store (storeguard.go); Store is read and replaced under stateMu.
type sharedStore struct {
	idempotency.Store
	dir string

	mu      sync.Mutex
	waiters map[idempotency.Key]chan struct{}

	stateMu   sync.Mutex
	broken    bool // a store call panicked; the store is being reopened
	destroyed bool // Destruct ran
}

// Destruct closes the store when the last handler using it is cleaned up.
// Requests still running then get idempotency.ErrClosed and answer U. A
// broken store is closed by its reopening goroutine, which stops there.
func (s *sharedStore) Destruct() error {
	s.stateMu.Lock()
	s.destroyed = true
	st, broken := s.Store, s.broken
	s.stateMu.Unlock()
	if broken {
		return nil
	}
	return st.Close()
}

// openStore is how the pool opens a directory; tests may swap it.
var openStore = func(dir string) (idempotency.Store, error) {
	return idempotency.OpenBadger(idempotency.BadgerOptions{
		Dir:    dir,
		Logger: caddy.Log().Named("dws_notify"),
	})
}

func acquireStore(dir string) (*sharedStore, error) {
	v, _, err := storePool.LoadOrNew(dir, func() (caddy.Destructor, error) {
		st, err := openStore(dir)
		if err != nil {
			return nil, describeOpenError(dir, err)
		}
		return &sharedStore{Store: st, dir: dir, waiters: map[idempotency.Key]chan struct{}{}}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedStore), nil
}

func releaseStore(dir string) error {
	_, err := storePool.Delete(dir)
	return err
}

// describeOpenError turns Badger's directory-lock failure into advice.
func describeOpenError(dir string, err error) error {
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return fmt.Errorf("dws_notify: storage %s is locked by another process (a running Caddy?): to test a config on a live host use `caddy reload`, or point storage at another directory: %w", dir, err)
	}
	return fmt.Errorf("dws_notify: opening storage %s: %w", dir, err)
}

// track registers an in-flight claim held by this process; the returned
// function wakes every duplicate waiting for it.
func (s *sharedStore) track(key idempotency.Key) func() {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters[key] = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.waiters[key] == ch {
			delete(s.waiters, key)
		}
		s.mu.Unlock()
		close(ch)
	}
}

// pollInterval is how often a waiting duplicate re-reads the store when the
// claim it waits for is not tracked in this process (a claim taken just now,
// or left by a previous run whose lease has not expired).
const pollInterval = 25 * time.Millisecond

// awaitOutcome waits until the in-flight claim on key is done, released, or
// the deadline passes, and returns the record then (found reports whether
// one exists).
func (s *sharedStore) awaitOutcome(ctx context.Context, key idempotency.Key, deadline time.Time) (idempotency.Record, bool, error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return s.Get(ctx, key)
		}
		s.mu.Lock()
		ch := s.waiters[key]
		s.mu.Unlock()
		if ch == nil && wait > pollInterval {
			wait = pollInterval
		}
		timer.Reset(wait)
		select {
		case <-ch: // a nil channel blocks: poll on the timer
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		case <-ctx.Done():
			return idempotency.Record{}, false, ctx.Err()
		}
		rec, found, err := s.Get(ctx, key)
		if err != nil || !found || rec.State != idempotency.StateInFlight {
			return rec, found, err
		}
	}
}

// errNoStore is reported when a request reaches a handler whose store
// reference was already given back.
var errNoStore = errors.New("dws_notify: store is not available")

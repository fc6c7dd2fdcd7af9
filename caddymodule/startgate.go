package caddymodule

import (
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(new(startGate))
}

// startGateApp is the app name of startGate.
const startGateApp = "dws_notify"

// startGate is the app `dws_notify`, which every dws_notify handler loads
// while it is provisioned (configs never need to name it). It exists for its
// Start: Caddy starts the apps of a config it runs (`caddy run`, a reload)
// and never those of a config it only checks (`caddy validate`, `caddy
// adapt --validate`), and provisions both the same way. A handler whose
// Badger directory is held by another process at provisioning (so, on a
// host where the gateway runs, by that gateway) gets its store deferred
// instead of failing, so that validating a config on a live host passes;
// Start then opens every deferred store of the config, and fails with the
// directory-lock error if the other process still holds it, so a second
// gateway on the same directory still refuses to start. A reload inside
// the running gateway never defers: the new config shares the open store
// through the pool.
//
// Its Start first checks the order of the http app's routes
// (routeorder.go): a config whose dws_notify handler never runs, because
// a handler before it in its chain answers every request (the backend
// would get every request unverified), or a dws_notify that another's
// forwards certainly reach (it would answer them in place of the backend),
// fails to start, and a reload to it keeps the old config. Caddy has provisioned every handler by then.
//
// Its Start also starts the deliveries of the config's handlers with
// acknowledge on_receipt (deliveries.go), so `caddy validate` never
// delivers, and a reload hands them to the new config only once it runs;
// its Stop stops them. Last, it has the handlers warn of the Client-Ids
// and APIs they serve from another store than the config before
// (storechange.go), which only a config that runs does.
//
// It has no settings.
type startGate struct {
	ctx     caddy.Context
	mu      sync.Mutex
	stores  []*sharedStore
	inboxes []*Handler
	moved   []*Handler // handlers with store moves to warn of (storechange.go)
}

// CaddyModule returns the Caddy module information.
func (*startGate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  startGateApp,
		New: func() caddy.Module { return new(startGate) },
	}
}

// Provision keeps the config's context, whose http app Start reads.
func (g *startGate) Provision(ctx caddy.Context) error {
	g.ctx = ctx
	return nil
}

// add has Start open s if it is still deferred then.
func (g *startGate) add(s *sharedStore) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stores = append(g.stores, s)
}

// Start checks the order of the config's routes, opens its deferred
// stores, starts the deliveries of its handlers with acknowledge
// on_receipt, then has its handlers warn of the Client-Ids and APIs this
// config serves from another store than the config before it
// (warnStoreMoves, storechange.go): only a config that runs moves them.
func (g *startGate) Start() error {
	if err := checkRouteOrder(g.ctx); err != nil {
		return err
	}
	g.mu.Lock()
	stores, inboxes := g.stores, g.inboxes
	g.mu.Unlock()
	for _, s := range stores {
		if err := s.openDeferred(); err != nil {
			return err
		}
	}
	for _, h := range inboxes {
		h.store.deliveries.Start(h)
	}
	g.warnStoreMoves()
	return nil
}

// Stop stops the deliveries of the config's handlers (a newer config's
// go on); the handlers give their stores back in Cleanup.
func (g *startGate) Stop() error {
	g.mu.Lock()
	inboxes := g.inboxes
	g.mu.Unlock()
	for _, h := range inboxes {
		h.store.deliveries.leave(h)
	}
	return nil
}

// registerForStart loads the config's start gate (so that its Start
// checks the route order of every config with a dws_notify handler),
// hands it h's store if it is deferred (an open store needs nothing at
// start), and h itself if it has an inbox to start or store moves to
// warn of (storechange.go). A context that
// belongs to no config (one made with caddy.NewContext from a bare
// caddy.Context, as tests and embedders do) has no apps to start: there
// a deferred store is the directory-lock error it was before deferring
// existed, and an inbox does not deliver.
func registerForStart(ctx caddy.Context, h *Handler) (err error) {
	s := h.store
	defer func() {
		// caddy.Context.App dereferences the context's config: there is
		// no gate to load, which only a deferred store or an inbox minds.
		if recover() != nil {
			err = nil
			if s.IsDeferred() || h.inbox != nil {
				_, err = s.Current()
			}
		}
	}()
	v, err := ctx.App(startGateApp)
	if err != nil {
		return err
	}
	g := v.(*startGate)
	if s.IsDeferred() {
		g.add(s)
	}
	if len(h.storeMoves) > 0 {
		g.mu.Lock()
		g.moved = append(g.moved, h)
		g.mu.Unlock()
	}
	if h.inbox != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, o := range g.inboxes {
			if o.store != s {
				continue
			}
			if diff := sameInbox(h, o); diff != nil {
				return fmt.Errorf("two handlers with acknowledge on_receipt queue into storage %s with different %v: "+
					"its one delivering inbox could not open or order the other's notifications; give every on_receipt handler on one storage the same key and order_secret lines",
					s.name, diff)
			}
		}
		g.inboxes = append(g.inboxes, h)
	}
	return nil
}

// openDeferred opens a store whose directory another process held at
// provisioning; it does nothing for any other store.
func (s *sharedStore) openDeferred() error {
	opened, err := s.OpenDeferred()
	if err != nil {
		return describeOpenError(storeSpec{name: s.name}, err)
	}
	if opened {
		storeLog.Info("the storage is no longer held by another process; opened at start", zap.String("storage", s.name))
	}
	return nil
}

// warnStoreMoves has the config's handlers warn of the stores they moved
// Client-Ids and APIs from (storechange.go): the config now runs.
func (g *startGate) warnStoreMoves() {
	g.mu.Lock()
	moved := g.moved
	g.moved = nil
	g.mu.Unlock()
	for _, h := range moved {
		h.warnStoreMoves()
	}
}

// Interface guards
var (
	_ caddy.App         = (*startGate)(nil)
	_ caddy.Module      = (*startGate)(nil)
	_ caddy.Provisioner = (*startGate)(nil)
)

// Package inbox is the durable inbox of acknowledge on_receipt, without
// Caddy: it seals notifications (AES-256-GCM, keys with ids for rotation)
// and enqueues them in an idempotency.Queue, and it runs the deliveries:
// workers that lease due items, call an injected deliver function (the
// Caddy side runs the request through the route) and apply the outcome:
// 2xx delivered, a business-reject status business_rejected, anything else
// retried with exponential backoff and jitter until the maximum age, then
// dead-lettered. Clock, random source and hooks are injected; nothing is a
// package global. docs/inbox.md describes the whole mode.
package inbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Defaults of Config.
const (
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultFirstBackoff   = time.Second
	DefaultMaxBackoff     = 15 * time.Minute
	DefaultConcurrency    = 4
	DefaultDeliverTimeout = 10 * time.Second
	DefaultPollInterval   = time.Second
	DefaultRetention      = 168 * time.Hour
	// leaseMargin is added to the delivery timeout for the lease, for the
	// settlement after it.
	leaseMargin = 20 * time.Second
)

// Delivery is one try of a queued notification.
type Delivery struct {
	Key idempotency.Key
	Message
	// Attempt counts the tries, this one included (since the last
	// redelivery).
	Attempt    int
	EnqueuedAt time.Time
}

// DeliverFunc sends a delivery to the backend within ctx and returns the
// backend's status, or an error when there was none (unreachable, timed
// out, no handler wrote a response).
type DeliverFunc func(ctx context.Context, d Delivery) (status int, err error)

// Clock is the time source of the inbox. The store keeps its own clock
// for due times and leases (Badger's BadgerOptions.Now, Redis's server).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Result is how a try ended.
type Result string

// Results of a try, and of the store's refusal to record it.
const (
	Delivered        Result = "delivered"
	BusinessRejected Result = "business_rejected"
	Retrying         Result = "retry"
	Dead             Result = "dead"
	// Undecryptable: the payload did not open (a key missing from the
	// ring); retried like a failed try, so adding the key back resumes it.
	Undecryptable Result = "undecryptable"
	// Stopped: the inbox stopped during the try; the item is due again at
	// once.
	Stopped Result = "stopped"
)

// Attempt is what the Tried hook receives after each try.
type Attempt struct {
	Key     idempotency.Key
	Attempt int
	Status  int    // the backend's status, 0 when none
	Reason  string // for a failed try: "status", "error", "timeout", "decrypt", "stopped"
	Result  Result
	Took    time.Duration
	// EnqueuedAt is when the notification was queued (at receipt).
	EnqueuedAt time.Time
	// RetryIn is the pause before the next try (Retrying).
	RetryIn time.Duration
	// StoreErr is set when the store did not record the result
	// (idempotency.ErrLeaseLost: another deliverer took the item over).
	StoreErr error
}

// Hooks observe the inbox (metrics, tests); each may be nil. They run on
// the worker's goroutine and must not block.
type Hooks struct {
	Tried      func(Attempt)
	Enqueued   func(key idempotency.Key, err error)
	LeaseError func(error)
}

// Config configures New. Queue, Keys, Deliver and OrderSecret are
// required.
type Config struct {
	Queue   idempotency.Queue
	Keys    *Keyring
	Deliver DeliverFunc
	// OrderSecret keys the HMAC of the order keys (OrderKey): at least
	// MinOrderSecretLen bytes (DeriveOrderSecret makes one from a key). It
	// must stay the same while items are queued, across key rotation and
	// on every gateway of a fleet: a changed secret puts a customer's new
	// notifications in another order than its queued ones.
	OrderSecret []byte
	// BusinessReject reports whether a non-2xx status is a business
	// rejection (recorded, never retried); nil means 400, 409 and 422.
	BusinessReject func(status int) bool
	// MaxAge is how long a notification is tried, from its arrival (or
	// redelivery), before it is dead-lettered: the last try is at MaxAge.
	MaxAge time.Duration
	// FirstBackoff and MaxBackoff bound the pause between tries: the n-th
	// failed try is followed by a pause of FirstBackoff * 2^(n-1), capped
	// at MaxBackoff, less up to half of it at random (never below
	// FirstBackoff).
	FirstBackoff, MaxBackoff time.Duration
	// MaxQueued bounds the queue (Enqueue answers ErrQueueFull); 0: none.
	MaxQueued int64
	// Concurrency is the number of deliveries at once.
	Concurrency int
	// DeliverTimeout bounds one try (the Caddy side: forward_timeout).
	DeliverTimeout time.Duration
	// Lease is how long a try holds its item before another deliverer may
	// take it over; 0 means DeliverTimeout plus 20 s.
	Lease time.Duration
	// PollInterval is how often the workers look for due items when
	// nothing wakes them (Notify does, after a local Enqueue).
	PollInterval time.Duration
	// Retention is how long the dedupe record (Enqueue) and the item's
	// record once final are kept.
	Retention time.Duration
	// DeadRetention is how long a dead letter keeps its payload for a
	// redelivery; 0 means Retention.
	DeadRetention time.Duration
	// Clock, Rand (in [0, 1)) and Logger default to the real clock,
	// math/rand/v2 and a no-op logger.
	Clock  Clock
	Rand   func() float64
	Logger *zap.Logger
	// KeyField is the field naming an item's key in the inbox's own log
	// lines; nil names it request_id, as a DWS requestId is. The caller
	// knows each API's family and names an Antom key its own way.
	KeyField func(idempotency.Key) zap.Field
	Hooks    Hooks
}

// Inbox enqueues and delivers. Create it with New; Start the deliveries,
// Stop them before the store is closed.
type Inbox struct {
	cfg Config
	log *zap.Logger

	kick chan struct{}
	mu   sync.Mutex
	run  *run // nil unless started
}

// run is one Start..Stop.
type run struct {
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // the tries' base context; canceled by a Stop that runs out
	cancel context.CancelFunc
	slots  chan struct{}
	wg     sync.WaitGroup
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Inbox, error) {
	if cfg.Queue == nil || cfg.Keys == nil || cfg.Deliver == nil {
		return nil, fmt.Errorf("%w: inbox needs a queue, keys and a deliver function", idempotency.ErrInvalidArgument)
	}
	if len(cfg.OrderSecret) < MinOrderSecretLen {
		return nil, fmt.Errorf("%w: inbox order secret of %d bytes, must be at least %d", idempotency.ErrInvalidArgument, len(cfg.OrderSecret), MinOrderSecretLen)
	}
	cfg.OrderSecret = bytes.Clone(cfg.OrderSecret)
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.FirstBackoff, DefaultFirstBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.DeliverTimeout, DefaultDeliverTimeout)
	def(&cfg.Lease, cfg.DeliverTimeout+leaseMargin)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.Retention, DefaultRetention)
	def(&cfg.DeadRetention, cfg.Retention)
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	switch {
	case cfg.MaxAge < 0, cfg.FirstBackoff < 0, cfg.DeliverTimeout < 0, cfg.PollInterval < 0, cfg.Retention < 0:
		return nil, fmt.Errorf("%w: inbox durations must be positive", idempotency.ErrInvalidArgument)
	case cfg.MaxBackoff < cfg.FirstBackoff:
		return nil, fmt.Errorf("%w: longest pause %v shorter than the first %v", idempotency.ErrInvalidArgument, cfg.MaxBackoff, cfg.FirstBackoff)
	case cfg.Lease <= cfg.DeliverTimeout:
		return nil, fmt.Errorf("%w: lease %v must be longer than the delivery timeout %v", idempotency.ErrInvalidArgument, cfg.Lease, cfg.DeliverTimeout)
	case cfg.DeadRetention > cfg.Retention || cfg.DeadRetention < 0:
		return nil, fmt.Errorf("%w: dead letters' payload retention %v must be within the retention %v", idempotency.ErrInvalidArgument, cfg.DeadRetention, cfg.Retention)
	case cfg.Concurrency < 1 || cfg.Concurrency > idempotency.MaxLeaseBatch:
		return nil, fmt.Errorf("%w: concurrency %d must be 1..%d", idempotency.ErrInvalidArgument, cfg.Concurrency, idempotency.MaxLeaseBatch)
	case cfg.MaxQueued < 0:
		return nil, fmt.Errorf("%w: max queued %d is negative", idempotency.ErrInvalidArgument, cfg.MaxQueued)
	}
	if cfg.BusinessReject == nil {
		cfg.BusinessReject = func(s int) bool { return s == 400 || s == 409 || s == 422 }
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.KeyField == nil {
		cfg.KeyField = func(k idempotency.Key) zap.Field { return zap.String("request_id", k.RequestID) }
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Inbox{cfg: cfg, log: log, kick: make(chan struct{}, 1)}, nil
}

// Enqueue seals msg for key and stores it, completing the claim (token)
// so duplicates replay S; the caller answers S only when it returns nil.
// idempotency.ErrQueueFull means the bound is reached (answer U and
// release the claim). It wakes the local workers.
func (ib *Inbox) Enqueue(ctx context.Context, key idempotency.Key, token uint64, msg Message) error {
	sealed, err := ib.cfg.Keys.Seal(key, appendMessage(nil, msg))
	if err == nil {
		err = ib.cfg.Queue.Enqueue(ctx, key, token,
			idempotency.NewItem{OrderKey: OrderKey(ib.cfg.OrderSecret, key.ClientID, key.API, key.RequestID, msg.Body), Payload: sealed},
			idempotency.EnqueueOptions{Retention: ib.cfg.Retention, MaxQueued: ib.cfg.MaxQueued})
	}
	if h := ib.cfg.Hooks.Enqueued; h != nil {
		h(key, err)
	}
	if err == nil {
		ib.Notify()
	}
	return err
}

// Notify wakes the workers to look for due items now.
func (ib *Inbox) Notify() {
	select {
	case ib.kick <- struct{}{}:
	default:
	}
}

// Start starts the deliveries. It is an error to start twice without Stop.
func (ib *Inbox) Start() error {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if ib.run != nil {
		return errors.New("inbox: already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{stop: make(chan struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, ib.cfg.Concurrency)}
	ib.run = r
	go ib.loop(r)
	return nil
}

// Stop stops leasing and waits for the tries under way until ctx ends;
// then it cancels them, and each that ends without the backend's status
// gives its item back due at once (Retry with no pause, reason
// "stopped"); a try that returned a status is settled by it as usual, so another deliverer, or the next
// Start, takes it without waiting for the lease. Items whose settlement
// cannot reach the store are left to their lease's expiry.
func (ib *Inbox) Stop(ctx context.Context) {
	ib.Detach()(ctx)
}

// Detach stops the run's leasing and returns the rest of Stop: the wait
// for the tries under way until ctx ends. The run leases no more once
// Detach returned (a lease already under way still hands its items to
// workers). The inbox can Start again as soon as Detach returns, while
// the tries of the run it stopped finish (their items stay leased, so the
// new run does not take them meanwhile).
func (ib *Inbox) Detach() (wait func(ctx context.Context)) {
	ib.mu.Lock()
	r := ib.run
	ib.run = nil
	ib.mu.Unlock()
	if r == nil {
		return func(context.Context) {}
	}
	close(r.stop)
	return func(ctx context.Context) {
		<-r.done
		finished := make(chan struct{})
		go func() { r.wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-ctx.Done():
			r.cancel()
			<-finished
		}
		r.cancel()
	}
}

// loop leases as many items as there are free workers, whenever woken:
// by Notify, by a worker that finished, or every PollInterval.
func (ib *Inbox) loop(r *run) {
	defer close(r.done)
	for {
		// A stopped run leases no more, even when a wake-up was waiting
		// beside its stop (a select picks either): that wake-up is
		// passed on to the run that goes on, if any.
		select {
		case <-r.stop:
			ib.Notify()
			return
		default:
		}
		free := cap(r.slots) - len(r.slots)
		full := false
		if free > 0 {
			items, err := ib.cfg.Queue.Lease(r.ctx, free, ib.cfg.Lease)
			if err != nil {
				if h := ib.cfg.Hooks.LeaseError; h != nil {
					h(err)
				}
				ib.log.Warn("inbox: leasing due items failed", zap.Error(err))
			}
			for _, it := range items {
				r.slots <- struct{}{}
				r.wg.Add(1)
				go ib.work(r, it)
			}
			full = len(items) == free
		}
		if full {
			// More may be due: go on once a worker is free.
			select {
			case <-r.stop:
				return
			default:
			}
			continue
		}
		select {
		case <-r.stop:
			return
		case <-ib.kick:
		case <-ib.cfg.Clock.After(ib.cfg.PollInterval):
		}
	}
}

// work tries one item and records the result.
func (ib *Inbox) work(r *run, it idempotency.Item) {
	defer func() {
		<-r.slots
		r.wg.Done()
		ib.Notify()
	}()
	a := Attempt{Key: it.Key, Attempt: it.Attempts, EnqueuedAt: it.EnqueuedAt}
	start := ib.cfg.Clock.Now()
	pt, err := ib.cfg.Keys.Open(it.Key, it.Payload)
	var msg Message
	if err == nil {
		msg, err = parseMessage(pt)
	}
	if err != nil {
		a.Reason = "decrypt"
		ib.log.Error("inbox: a queued payload does not open; it is retried until a key that opens it is configured or it is dead-lettered",
			zap.String("api", it.Key.API), ib.cfg.KeyField(it.Key), zap.Error(err))
	} else {
		ctx, cancel := context.WithTimeout(r.ctx, ib.cfg.DeliverTimeout)
		a.Status, err = ib.cfg.Deliver(ctx, Delivery{Key: it.Key, Message: msg, Attempt: it.Attempts, EnqueuedAt: it.EnqueuedAt})
		// A try that returned a status is settled by it, even when the
		// inbox is stopping: the backend may have taken the notification,
		// and giving it back would deliver it twice.
		switch {
		case err != nil && r.ctx.Err() != nil:
			a.Reason = "stopped"
		case err != nil && ctx.Err() != nil:
			a.Reason = "timeout"
		case err != nil:
			a.Reason = "error"
		case a.Status < 200 || a.Status > 999:
			a.Status, err, a.Reason = 0, fmt.Errorf("no answer (status %d)", a.Status), "error"
		}
		cancel()
	}
	now := ib.cfg.Clock.Now()
	a.Took = now.Sub(start)
	// The settlement must reach the store even when the run was canceled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), ib.cfg.Lease)
	defer cancel()
	ref := it.Ref()
	switch {
	case a.Reason == "stopped":
		a.Result = Stopped
		a.StoreErr = ib.cfg.Queue.Retry(sctx, ref, 0, 0, a.Reason)
	case err == nil && a.Status < 300:
		a.Result = Delivered
		a.StoreErr = ib.cfg.Queue.Ack(sctx, ref, a.Status, ib.cfg.Retention)
	case err == nil && ib.cfg.BusinessReject(a.Status):
		a.Result = BusinessRejected
		a.StoreErr = ib.cfg.Queue.Reject(sctx, ref, a.Status, ib.cfg.Retention)
	default:
		if a.Reason == "" {
			a.Reason = "status"
		}
		deadline := it.AgeFrom().Add(ib.cfg.MaxAge)
		if !now.Before(deadline) {
			a.Result = Dead
			a.StoreErr = ib.cfg.Queue.DeadLetter(sctx, ref, a.Status, a.Reason, ib.cfg.DeadRetention, ib.cfg.Retention)
			ib.log.Warn("inbox: notification dead-lettered after its maximum age",
				zap.String("api", it.Key.API), ib.cfg.KeyField(it.Key),
				zap.Int("attempts", it.Attempts), zap.Int("backend_status", a.Status), zap.String("reason", a.Reason))
		} else {
			a.Result = Retrying
			if a.Reason == "decrypt" {
				a.Result = Undecryptable
			}
			a.RetryIn = min(ib.Backoff(it.Attempts), deadline.Sub(now))
			a.StoreErr = ib.cfg.Queue.Retry(sctx, ref, a.RetryIn, a.Status, a.Reason)
		}
	}
	if a.StoreErr != nil && !errors.Is(a.StoreErr, idempotency.ErrLeaseLost) {
		ib.log.Warn("inbox: recording a delivery's result failed; the item is tried again after its lease",
			zap.String("api", it.Key.API), ib.cfg.KeyField(it.Key), zap.String("result", string(a.Result)), zap.Error(a.StoreErr))
	}
	if h := ib.cfg.Hooks.Tried; h != nil {
		h(a)
	}
}

// Backoff is the pause after the n-th failed try: FirstBackoff * 2^(n-1)
// capped at MaxBackoff, less a random part of up to half of it, never
// below FirstBackoff.
func (ib *Inbox) Backoff(n int) time.Duration {
	d := ib.cfg.FirstBackoff
	for i := 1; i < n && d < ib.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, ib.cfg.MaxBackoff)
	j := d - time.Duration(ib.cfg.Rand()*float64(d)/2)
	return max(j, ib.cfg.FirstBackoff)
}

// Open decrypts a queued item's payload (for an admin view or a test):
// the message it holds.
func (ib *Inbox) Open(it idempotency.Item) (Message, error) {
	pt, err := ib.cfg.Keys.Open(it.Key, it.Payload)
	if err != nil {
		return Message{}, err
	}
	return parseMessage(pt)
}

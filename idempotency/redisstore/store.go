package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// maxDuration caps leases and retentions: longer ones are stored as this.
// Times in records are Unix microseconds that the scripts keep exact below
// 2^53 (the year 2255); a century ahead keeps every expiry well inside.
const maxDuration = 100 * 365 * 24 * time.Hour

// Store is the idempotency.Store on Redis or Valkey. Create it with Open;
// it is safe for concurrent use, and any number of Stores, in one process
// or many, may share one Redis.
type Store struct {
	client    redis.UniversalClient
	ownClient bool
	prefix    string
	addr      string // the server, for messages: never holds a password
	opTimeout time.Duration
	log       *zap.Logger
	// secrets are the passwords Redact removes while the store is open.
	secrets []string
	// clock translates the server times of returned records to the local
	// clock (clock.go).
	clock *clockMap

	// The wait after each completion (Options.WaitAOF, WaitReplicas):
	// waitTimeout is 0 when there is none; waitClient is the client
	// sharing s.client's pool with a read timeout long enough for it.
	waitAOF      bool
	waitReplicas int
	waitTimeout  time.Duration
	waitClient   *redis.Client

	// q is the inbox queue's cached depth and lease rotation (queue.go).
	q queueState

	// mu guards closed. Every operation registers in ops while the store is
	// open; Close marks the store closed and waits for ops to drain before
	// it closes the client.
	mu        sync.RWMutex
	closed    bool
	ops       sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ idempotency.Store = (*Store)(nil)

// Open connects to the server that opts describes, checks it with a PING
// and loads the scripts. The error names the server's address (never the
// password). See the package documentation for what the server's settings
// mean for the guarantees; Open logs a warning when it can see that
// persistence is off or that the server may evict keys.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := validateOptions(&opts); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Store{
		prefix:    opts.Prefix,
		opTimeout: opts.OperationTimeout,
		log:       log,
		clock:     newClockMap(nil),
	}
	if opts.Client != nil {
		s.client = opts.Client
		s.addr = describeClient(opts.Client)
		s.secrets = []string{clientPassword(opts.Client)}
	} else {
		p, err := plan(&opts)
		if err != nil {
			return nil, err
		}
		s.client = p.newClient()
		s.ownClient = true
		s.addr = p.addr
		s.secrets = p.secrets
	}
	for _, pw := range s.secrets {
		holdSecret(pw)
	}
	if err := s.check(ctx, opts); err != nil {
		if s.ownClient {
			s.client.Close()
		}
		for _, pw := range s.secrets {
			releaseSecret(pw)
		}
		return nil, err
	}
	return s, nil
}

// ErrServerRefused is wrapped by Open's error when the server answered but
// refused the store's configuration: a wrong password or user, a database
// number it does not have, missing permissions, WaitAOF on a server without
// WAITAOF or without appendonly. Waiting does not help, unlike a server
// that is unreachable, times out or is still loading its data (those errors
// do not wrap it).
var ErrServerRefused = errors.New("redisstore: the Redis server refused the configuration")

// transientCodes are the codes of the server's error replies (the reply's
// first word, RESP's error type) that say "not now" rather than "not this
// configuration".
var transientCodes = map[string]bool{"LOADING": true, "BUSY": true, "MASTERDOWN": true, "TRYAGAIN": true, "CLUSTERDOWN": true, "READONLY": true, "MAXCLIENTS": true}

// refused wraps err in ErrServerRefused when it is a server error reply
// other than a transient one. Redis's "ERR max number of clients reached"
// has the generic code ERR; go-redis recognises it.
func refused(err error) error {
	var re redis.Error
	if !errors.As(err, &re) {
		return err
	}
	code, _, _ := strings.Cut(re.Error(), " ")
	if transientCodes[code] || redis.IsMaxClientsError(re) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrServerRefused, err)
}

// check pings the server, loads the scripts, probes WAITAOF if asked to,
// and logs what it can see of the server's persistence settings.
func (s *Store) check(ctx context.Context, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		if opts.Sentinel != nil && errors.Is(err, redis.Nil) {
			// The sentinels answered that they monitor no such primary.
			return fmt.Errorf("redisstore: %w: the sentinels of %s monitor no primary named %q (sentinel monitor <name> ...)", ErrServerRefused, s.addr, opts.Sentinel.MasterName)
		}
		return fmt.Errorf("redisstore: cannot reach Redis at %s: %w", s.addr, refused(err))
	}
	for _, sc := range []*redis.Script{claimScript, completeScript, releaseScript, getScript} {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("redisstore: loading a script into Redis at %s: %w", s.addr, refused(err))
		}
	}
	if opts.WaitAOF || opts.WaitReplicas > 0 {
		c, ok := s.client.(*redis.Client)
		if !ok {
			return fmt.Errorf("redisstore: %w: WaitAOF and WaitReplicas need a single-server or Sentinel client, not %T", idempotency.ErrInvalidArgument, s.client)
		}
		if err := s.probeWaits(ctx, c, opts); err != nil {
			return err
		}
	}
	s.syncClock(ctx)
	s.logSettings(ctx)
	return nil
}

// probeWaits checks that the server runs the commands Complete's wait
// needs, and enables the wait.
func (s *Store) probeWaits(ctx context.Context, c *redis.Client, opts Options) error {
	timeout := time.Duration(0)
	if opts.WaitAOF {
		timeout = opts.WaitAOFTimeout
	}
	if opts.WaitReplicas > 0 {
		timeout = max(timeout, opts.WaitReplicasTimeout)
	}
	timeout = time.Duration(max(timeout.Milliseconds(), 1)) * time.Millisecond
	if opts.WaitAOF {
		// WAITAOF 1 0 answers at once when nothing was written yet.
		if err := c.Process(ctx, waitAOFCmd(ctx, 0, timeout)); err != nil {
			msg := err.Error()
			switch {
			case strings.Contains(strings.ToLower(msg), "unknown command"):
				return fmt.Errorf("redisstore: WaitAOF: Redis at %s has no WAITAOF command (it needs Redis 7.2 or later, or Valkey 7.2 or later): %w", s.addr, refused(err))
			case strings.Contains(msg, "appendonly"):
				return fmt.Errorf("redisstore: WaitAOF: Redis at %s has appendonly disabled: %w", s.addr, refused(err))
			}
			return fmt.Errorf("redisstore: WaitAOF: probing WAITAOF on Redis at %s: %w", s.addr, refused(err))
		}
	}
	if opts.WaitReplicas > 0 {
		// WAIT 0 answers at once: it only shows the command is allowed.
		if err := c.Process(ctx, waitReplicasCmd(ctx, 0, time.Millisecond)); err != nil {
			return fmt.Errorf("redisstore: WaitReplicas: probing WAIT on Redis at %s: %w", s.addr, refused(err))
		}
		info, err := c.Info(ctx, "replication").Result()
		if err == nil {
			if n := strings.Count(info, ",state=online,"); n < opts.WaitReplicas {
				s.log.Warn("redisstore: the primary has fewer replicas online than WaitReplicas asks for: every completion is answered U until enough replicas are back",
					zap.String("redis", s.addr), zap.Int("replicas_online", n), zap.Int("wait_replicas", opts.WaitReplicas))
			}
		}
	}
	s.enableWait(c, opts.WaitAOF, opts.WaitReplicas, timeout)
	return nil
}

// syncClock gives the clock map a few observations of the server's clock
// (TIME), so that the translation of the first records starts from the
// tightest of them. Errors are ignored: the store calls observe anyway.
func (s *Store) syncClock(ctx context.Context) {
	for range 3 {
		sent := s.clock.now()
		t, err := s.client.Time(ctx).Result()
		if err != nil {
			return
		}
		s.clock.observe(sent, s.clock.now(), t)
	}
}

// logSettings logs the server's version and warns about settings that
// weaken the store's guarantees. CONFIG may be disabled (managed services
// often rename it): then it says so in one line at info level, since the
// operator must check those settings another way.
func (s *Store) logSettings(ctx context.Context) {
	fields := []zap.Field{zap.String("redis", s.addr), zap.String("prefix", s.prefix), zap.Bool("wait_aof", s.waitAOF), zap.Int("wait_replicas", s.waitReplicas)}
	if info, err := s.client.Info(ctx, "server").Result(); err == nil {
		fields = append(fields, zap.String("server_version", infoField(info, "redis_version")))
		if v := infoField(info, "valkey_version"); v != "" {
			fields = append(fields, zap.String("valkey_version", v))
		}
	}
	cfg, err := s.client.ConfigGet(ctx, "*").Result()
	if err != nil {
		s.log.Info("redisstore: could not check Redis's persistence and eviction settings (CONFIG GET failed; managed services often disable CONFIG): make sure the server has appendonly yes and maxmemory-policy noeviction", append(fields, zap.Error(err))...)
	} else {
		aof, fsync, save, policy := cfg["appendonly"], cfg["appendfsync"], cfg["save"], cfg["maxmemory-policy"]
		fields = append(fields, zap.String("appendonly", aof), zap.String("appendfsync", fsync), zap.String("save", save), zap.String("maxmemory_policy", policy))
		if aof != "yes" {
			s.log.Warn("redisstore: Redis runs without the append-only file: a restart of Redis loses completed records (and with them the dedupe of their requestIds); use appendonly yes", fields...)
		} else if fsync == "no" {
			s.log.Warn("redisstore: Redis has appendfsync no: a power cut of the Redis host can lose many seconds of completed records; use everysec or always", fields...)
		}
		if policy != "" && policy != "noeviction" {
			s.log.Warn("redisstore: Redis may evict keys under memory pressure (maxmemory-policy is not noeviction): an evicted record lets a duplicate through; use noeviction", fields...)
		}
	}
	s.log.Debug("redisstore: store opened", fields...)
}

// infoField returns the value of name in an INFO reply.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Addr describes the server the store uses, for logs and admin output:
// address and database (or the cluster's seed addresses), never
// credentials.
func (s *Store) Addr() string { return s.addr }

// Prefix returns the prefix of the store's keys.
func (s *Store) Prefix() string { return s.prefix }

// enter registers an operation; it fails with ErrClosed once Close began.
// A successful enter must be paired with s.ops.Done().
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idempotency.ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// begin starts an operation: it fails with the context's error if ctx has
// ended, or ErrClosed, and otherwise returns ctx bounded by the operation
// timeout and the function that ends the operation.
func (s *Store) begin(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	return ctx, func() { cancel(); s.ops.Done() }, nil
}

// Claim implements idempotency.Store: one script run (EVALSHA) that reads
// the key and, when it may, writes the claim, atomically on the server.
func (s *Store) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	if err := idempotency.ValidateKey(key); err != nil {
		return idempotency.ClaimResult{}, err
	}
	if err := idempotency.ValidateClaim(lease, retention); err != nil {
		return idempotency.ClaimResult{}, err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return idempotency.ClaimResult{}, err
	}
	defer end()

	token := newToken()
	sent := s.clock.now()
	v, err := claimScript.Run(ctx, s.client, []string{recordKey(s.prefix, key)},
		fp[:], formatHex16(token), ceilDiv(min(lease, maxDuration), time.Microsecond),
		ceilDiv(min(retention, maxDuration), time.Millisecond)).Result()
	recv := s.clock.now()
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w", key, err)
	}
	var status idempotency.ClaimStatus
	switch st {
	case stClaimed:
		status = idempotency.Claimed
	case stInFlight:
		status = idempotency.InFlight
	case stDone:
		status = idempotency.Done
	case stConflict:
		status = idempotency.Conflict
	case stCorrupt:
		return idempotency.ClaimResult{}, corruptError(key, a)
	default:
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w: status %q", key, errUnexpectedReply, st)
	}
	rec, err := s.localRecord(key, a, sent, recv)
	if err != nil {
		return idempotency.ClaimResult{}, err
	}
	res := idempotency.ClaimResult{Status: status, Record: rec}
	if status == idempotency.Done && s.waitTimeout > 0 {
		// A done record is replayed only once it (and, for a queued
		// notification, the queue item written with it) is as durable as
		// the wait asks: the completion's own wait may have failed (it
		// answered U), or may still run. Otherwise the resend would get
		// an S that no replica backs, and a failover could then lose the
		// record and deliver the next copy again.
		if err := s.confirmDurable(ctx, key); err != nil {
			return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: the done record's durability: %w", key, err)
		}
	}
	if status == idempotency.Claimed {
		if rec.Token != token || rec.State != idempotency.StateInFlight {
			return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w: claimed record under another token", key, errUnexpectedReply)
		}
		res.Token = token
	}
	return res, nil
}

// Complete implements idempotency.Store. It returns when Redis has applied
// the completion (and, with Options.WaitAOF, fsynced it to the AOF); what
// survives a crash of the Redis host then depends on the server's
// persistence settings (see the package documentation).
func (s *Store) Complete(ctx context.Context, key idempotency.Key, token uint64, answer idempotency.Answer, retention time.Duration) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	if err := idempotency.ValidateAnswer(answer); err != nil {
		return err
	}
	if retention <= 0 {
		return fmt.Errorf("%w: retention %v must be positive", idempotency.ErrInvalidArgument, retention)
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	keys := []string{recordKey(s.prefix, key)}
	args := []any{formatHex16(token), formatHex16(newToken()), answer.ResultCode, string(answer.Outcome),
		strconv.Itoa(answer.BackendStatus), ceilDiv(min(retention, maxDuration), time.Millisecond)}
	v, err := s.runScript(ctx, completeScript, keys, args)
	if err != nil {
		return fmt.Errorf("redisstore: complete %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return fmt.Errorf("redisstore: complete %v: %w", key, err)
	}
	switch st {
	case stOK:
		return nil
	case stLost:
		return idempotency.ErrLeaseLost
	case stCorrupt:
		return corruptError(key, a)
	}
	return fmt.Errorf("redisstore: complete %v: %w: status %q", key, errUnexpectedReply, st)
}

// ErrUnconfirmed is idempotency.ErrUnconfirmed. It is wrapped by the
// error of Complete (or Enqueue) when the write was applied but the wait
// that Options.WaitAOF or WaitReplicas asks for was not confirmed in time,
// by that of Claim or ConfirmDone when a done record's durability could
// not be confirmed before its replay, and by that of ProbeDurability. The
// caller answers U; the provider's resend finds the record done (on the
// primary, if it still has it) and is replayed once the wait confirms it.
var ErrUnconfirmed = idempotency.ErrUnconfirmed

// waitAOFCmd builds WAITAOF 1 <replicas> <timeout>: wait until the local
// append-only file, and that of replicas replicas, holds this
// connection's writes fsynced. A variable so that the tests can exercise
// scriptAndWait on servers older than Redis 7.2 with a command that
// answers in the same shape.
var waitAOFCmd = func(ctx context.Context, replicas int, timeout time.Duration) *redis.IntSliceCmd {
	return redis.NewIntSliceCmd(ctx, "waitaof", 1, replicas, timeout.Milliseconds())
}

// waitReplicasCmd builds WAIT <replicas> <timeout>: wait until replicas
// replicas have acknowledged this connection's writes.
var waitReplicasCmd = func(ctx context.Context, replicas int, timeout time.Duration) *redis.IntCmd {
	return redis.NewIntCmd(ctx, "wait", replicas, timeout.Milliseconds())
}

// enableWait makes Complete wait, up to timeout, on c: for the AOF fsync
// (aof), for replicas replicas, or both.
func (s *Store) enableWait(c *redis.Client, aof bool, replicas int, timeout time.Duration) {
	s.waitAOF, s.waitReplicas, s.waitTimeout = aof, replicas, timeout
	// The wait is read as a reply: the connection's read timeout must
	// outlast it (the clone shares c's pool). A negative read timeout
	// means none.
	rt := c.Options().ReadTimeout
	if rt > 0 {
		rt += timeout
	}
	s.waitClient = c.WithTimeout(rt)
}

// waitCmd is the command Complete sends after the completion.
func (s *Store) waitCmd(ctx context.Context) redis.Cmder {
	if s.waitAOF {
		return waitAOFCmd(ctx, s.waitReplicas, s.waitTimeout)
	}
	return waitReplicasCmd(ctx, s.waitReplicas, s.waitTimeout)
}

// confirmed checks the reply of waitCmd.
func (s *Store) confirmed(w redis.Cmder) error {
	switch w := w.(type) {
	case *redis.IntSliceCmd:
		acks, err := w.Result()
		if err != nil {
			return fmt.Errorf("WAITAOF: %w", err)
		}
		if len(acks) != 2 || acks[0] < 1 {
			return fmt.Errorf("%w: written, but Redis did not confirm the AOF fsync within %v", ErrUnconfirmed, s.waitTimeout)
		}
		if acks[1] < int64(s.waitReplicas) {
			return fmt.Errorf("%w: written, but only %d of %d replicas confirmed the AOF fsync within %v", ErrUnconfirmed, acks[1], s.waitReplicas, s.waitTimeout)
		}
	case *redis.IntCmd:
		n, err := w.Result()
		if err != nil {
			return fmt.Errorf("WAIT: %w", err)
		}
		if n < int64(s.waitReplicas) {
			return fmt.Errorf("%w: written, but only %d of %d replicas confirmed it within %v", ErrUnconfirmed, n, s.waitReplicas, s.waitTimeout)
		}
	}
	return nil
}

// runScript runs a write script: with a durability wait configured, in
// the pipeline that waits for it (scriptAndWait); otherwise on its own.
func (s *Store) runScript(ctx context.Context, sc *redis.Script, keys []string, args []any) (any, error) {
	if s.waitTimeout > 0 {
		return s.scriptAndWait(ctx, sc, keys, args)
	}
	return sc.Run(ctx, s.client, keys, args...).Result()
}

// scriptAndWait runs a script (the complete script, or a queue script) and
// the wait (WAITAOF or WAIT) in one pipeline, so both go over the same
// connection (both wait for the last write of their own connection). A
// script that did not answer ok (a completion that was lost) needs no
// wait. A script that finds the effect of its own earlier attempt (its
// reply lost, the attempt made on a connection go-redis gave up on)
// writes again all the same: a completion re-applies the TTL, a
// settlement or redelivery rewrites its nonce as it is. Since Redis 7.2
// the wait covers only this connection's writes, so without that write
// it would confirm at once what may not be replicated or fsynced yet.
func (s *Store) scriptAndWait(ctx context.Context, sc *redis.Script, keys []string, args []any) (any, error) {
	run := func(eval func(redis.Pipeliner) *redis.Cmd) (*redis.Cmd, redis.Cmder, error) {
		pipe := s.waitClient.Pipeline()
		c := eval(pipe)
		w := s.waitCmd(ctx)
		if err := pipe.Process(ctx, w); err != nil {
			return c, w, err
		}
		_, err := pipe.Exec(ctx)
		return c, w, err
	}
	c, w, err := run(func(p redis.Pipeliner) *redis.Cmd { return sc.EvalSha(ctx, p, keys, args...) })
	if err != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
		c, w, err = run(func(p redis.Pipeliner) *redis.Cmd { return sc.Eval(ctx, p, keys, args...) })
	}
	if cerr := c.Err(); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	v := c.Val()
	if st, _, _ := replyStatus(v); st != stOK {
		return v, nil
	}
	if err := s.confirmed(w); err != nil {
		return nil, err
	}
	return v, nil
}

// confirmDurable makes the done record of key as durable as
// Options.WaitAOF and WaitReplicas ask: it rewrites the record's expiry
// as it is (a write, so it reaches the append-only file and the replicas
// after the record's completion and the item written with it) and waits
// for that write. ErrUnconfirmed when the wait is not confirmed.
func (s *Store) confirmDurable(ctx context.Context, key idempotency.Key) error {
	v, err := s.scriptAndWait(ctx, touchScript, []string{recordKey(s.prefix, key)}, nil)
	if err != nil {
		return err
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return err
	}
	switch st {
	case stOK:
		return nil
	case stCorrupt:
		return corruptError(key, a)
	}
	return fmt.Errorf("%w: the record changed while its durability was checked (%s)", ErrUnconfirmed, st)
}

var _ idempotency.DoneConfirmer = (*Store)(nil)

// ConfirmDone implements idempotency.DoneConfirmer: with Options.WaitAOF
// or WaitReplicas it makes the done record of key as durable as the wait
// asks (confirmDurable), within the operation timeout; without a wait
// there is nothing to confirm.
func (s *Store) ConfirmDone(ctx context.Context, key idempotency.Key) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	if s.waitTimeout <= 0 {
		return nil
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if err := s.confirmDurable(ctx, key); err != nil {
		return fmt.Errorf("redisstore: confirm %v: %w", key, err)
	}
	return nil
}

var _ idempotency.DurabilityProber = (*Store)(nil)

// probeTTL is how long the probe key lives after ProbeDurability wrote it.
const probeTTL = time.Minute

// ProbeDurability implements idempotency.DurabilityProber: it writes the
// probe key (<prefix>h:probe, expiring after a minute) and, with
// Options.WaitAOF or WaitReplicas, waits for that write in the pipeline a
// completion uses (ErrUnconfirmed when the wait is not confirmed), within
// the operation timeout.
func (s *Store) ProbeDurability(ctx context.Context) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	v, err := s.runScript(ctx, probeScript, []string{probeKey(s.prefix)}, []any{probeTTL.Milliseconds()})
	if err != nil {
		return fmt.Errorf("redisstore: probe: %w", err)
	}
	if st, _, err := replyStatus(v); err != nil || st != stOK {
		return fmt.Errorf("redisstore: probe: %w: status %q (%v)", errUnexpectedReply, st, err)
	}
	return nil
}

// Release implements idempotency.Store.
func (s *Store) Release(ctx context.Context, key idempotency.Key, token uint64) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	v, err := releaseScript.Run(ctx, s.client, []string{recordKey(s.prefix, key)}, formatHex16(token)).Result()
	if err != nil {
		return fmt.Errorf("redisstore: release %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return fmt.Errorf("redisstore: release %v: %w", key, err)
	}
	switch st {
	case stReleased, stKept:
		return nil
	case stCorrupt:
		return corruptError(key, a)
	}
	return fmt.Errorf("redisstore: release %v: %w: status %q", key, errUnexpectedReply, st)
}

// Get implements idempotency.Store.
func (s *Store) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	if err := idempotency.ValidateKey(key); err != nil {
		return idempotency.Record{}, false, err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return idempotency.Record{}, false, err
	}
	defer end()

	sent := s.clock.now()
	v, err := getScript.Run(ctx, s.client, []string{recordKey(s.prefix, key)}).Result()
	recv := s.clock.now()
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("redisstore: get %v: %w", key, err)
	}
	return s.getReply(key, v, sent, recv)
}

// localRecord decodes the record of a script reply that carries one,
// with its times on the local clock: the call was sent at sent and
// answered at recv, local time (see clockMap).
func (s *Store) localRecord(key idempotency.Key, a []any, sent, recv time.Time) (idempotency.Record, error) {
	rec, err := decodeRecord(key, a)
	if err != nil {
		return idempotency.Record{}, err
	}
	// decodeRecord checked the server time.
	now, _ := parseMicros(a[1].(string))
	return localRecord(rec, s.clock.observe(sent, recv, now)), nil
}

// getReply interprets a reply of the get script, sent at sent and
// answered at recv (local clock).
func (s *Store) getReply(key idempotency.Key, v any, sent, recv time.Time) (idempotency.Record, bool, error) {
	st, a, err := replyStatus(v)
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("redisstore: get %v: %w", key, err)
	}
	switch st {
	case stAbsent:
		return idempotency.Record{}, false, nil
	case stFound:
		rec, err := s.localRecord(key, a, sent, recv)
		return rec, err == nil, err
	case stCorrupt:
		return idempotency.Record{}, false, corruptError(key, a)
	}
	return idempotency.Record{}, false, fmt.Errorf("redisstore: get %v: %w: status %q", key, errUnexpectedReply, st)
}

func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.ops.Wait()
		if s.ownClient {
			if err := s.client.Close(); err != nil {
				s.closeErr = fmt.Errorf("redisstore: close client of %s: %w", s.addr, err)
			}
		}
		for _, pw := range s.secrets {
			releaseSecret(pw)
		}
		s.log.Debug("redisstore: store closed", zap.String("redis", s.addr), zap.String("prefix", s.prefix), zap.Error(s.closeErr))
	})
	return s.closeErr
}

// newToken returns a random non-zero 64-bit value (claim tokens and
// completion nonces).
func newToken() uint64 {
	for {
		if t := rand.Uint64(); t != 0 {
			return t
		}
	}
}

// ceilDiv returns d in units of unit, rounded up, as a decimal string for a
// script argument (so a positive duration never becomes 0).
func ceilDiv(d, unit time.Duration) string {
	n := d / unit
	if d%unit != 0 {
		n++
	}
	return strconv.FormatInt(int64(n), 10)
}

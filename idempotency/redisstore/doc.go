// Package redisstore implements idempotency.Store on Redis or Valkey, so
// that several gateways behind a load balancer dedupe DWS notifications
// together: a requestId is forwarded once across the whole fleet, not once
// per instance. It is the fleet alternative to the embedded Badger store of
// package idempotency, with the same semantics (the same conformance suite,
// idempotency/storetest, runs against a real redis-server), and it does not
// import Caddy.
//
// # Client
//
// The store uses github.com/redis/go-redis/v9: the client maintained by
// Redis itself; it speaks to Redis and Valkey alike; one interface
// (redis.UniversalClient) covers a single server, Sentinel-managed failover
// and Redis Cluster; every command takes a context; it keeps a connection
// pool, reconnects by itself and supports TLS and ACL users. Open builds
// the client itself from one of three forms: a redis://, rediss:// or
// unix:// URL (one server, with password and database), Options.Sentinel
// (the master name and sentinel addresses: a failover client that asks the
// sentinels for the primary and follows it through failovers) or
// Options.Cluster (seed addresses of a Redis Cluster); a program with a
// client of its own (a Ring, shared pools) passes it in Options.Client
// instead. Every form gets timeouts short enough for a request path: dial
// 2 s, read and write 1 s, one retry, and 3 s for a whole store call
// whatever the caller's context allows (Options.OperationTimeout); contexts
// bound socket I/O (ContextTimeoutEnabled). Options.TLSConfig is the
// store's own TLS configuration (a private CA, a client certificate, the
// server name): it changes nothing else in the process, whose other
// clients keep the system's roots.
//
// # Keys
//
// One Redis key per record:
//
//	<prefix>r:<ClientID>:<API>:<RequestID>
//	dws_notify:r:2188120000000000:addPaymentMethod:2019112811234500011
//
// The prefix (Options.Prefix, default "dws_notify:") separates fleets and
// environments sharing one Redis; gateways that must dedupe together use the
// same prefix and database. "r:" marks record keys. In each field the bytes
// '%', ':', '{', '}', '*', '?', '[', ']', '\', space, control characters and
// everything outside printable ASCII are written as %XX (upper-case hex),
// all other bytes as they are: usual ids stay readable, the two ':' after
// the marker are always the separators (so the encoding is injective; keys
// that differ only in where a ':' falls get different names), a name can be
// pasted into a SCAN MATCH pattern, and only the prefix can carry a Redis
// Cluster hash tag. Decoding accepts only this canonical form. One rule for
// shared servers: no prefix may start with another store's prefix followed
// by "r:", or that store's Scan meets keys it cannot decode (and reports
// them as corrupt).
//
// Beside the records and the inbox queue's keys (below), one probe key,
// <prefix>h:probe: a hash of one field that ProbeDurability writes with a
// one-minute TTL and waits for as a completion is waited for.
//
// # Records
//
// A record is a HASH with one-letter fields: v (format version), s (state),
// f (fingerprint, 32 raw bytes), t (claim token, 16 hex digits), c and l
// (claim time and lease expiry, Unix microseconds); done records add d
// (completion time), o (outcome), b (backend status), r (result code) and n
// (the completing call's nonce, see Retries). Nothing else: no body, card
// field or header. Retention is the key's TTL (PEXPIRE, millisecond
// precision): Claim sets it to the claim's retention, Complete to the
// completion's, from the moment they run; Redis deletes the key when it
// ends. A done record of a typical notification takes about 400 bytes of
// server memory with the default prefix and a 32-character requestId
// (BENCHMARKS.md), so a Redis for 1 million retained notifications needs
// roughly 0.4 GB.
//
// Every key is read and written by Lua scripts (EVALSHA, falling back to
// EVAL when the server lost its script cache), each touching only its one
// key, so Redis runs each check-and-set atomically.
//
// On Redis Cluster a script must declare every key it touches, and they
// must all hash to one slot (or the node answers CROSSSLOT). A
// notification has exactly one key, its record, declared as KEYS[1] of
// every script, so its claim, completion, release and read are each one
// script on the one node that owns that key's slot: atomic without any
// hash tag, and the records of different notifications spread over every
// primary. The key encoding escapes '{' and '}' in the fields, so no
// Client-Id or requestId can pick a slot; a prefix may carry a hash tag
// ("{fleet}:"), which puts every record of the store into one slot (and
// one node). If a notification ever needs a second key, it must share the
// record's slot: the fields' part of the key, braced, would be the tag. The scripts check every field of a record as strictly
// as the Go decoder; anything else under a record key (another type, a
// missing or malformed field, an extra field) is reported as
// idempotency.ErrCorruptRecord by every call, and no script overwrites or
// deletes it (it goes when its TTL ends, or by hand).
//
//   - claim: a record with another fingerprint gives Conflict, whatever its
//     state; a done one gives Done with the answer to replay; an in-flight
//     one gives InFlight while its lease lasts; otherwise (absent, or lease
//     ended) it writes a new in-flight record under a new random token,
//     with the lease and the retention.
//   - complete: only an in-flight record under the caller's token becomes
//     done (answer, completion time, retention from now); anything else is
//     idempotency.ErrLeaseLost.
//   - release: deletes the record only if it is in flight under the
//     caller's token.
//   - get: the record, its TTL and the server time in one step; Scan uses
//     it too.
//
// # Queue
//
// The store implements idempotency.Queue too, on keys of their own under
// <prefix>q{<shard>}: (queue.go has the layout, queue_scripts.go the
// scripts): 16 shards by order key. An enqueue writes the item and
// completes the dedupe record in one script, so both survive a failover
// or neither does; that needs one server (a URL or Sentinel), and the
// queue is refused on a Cluster (ErrQueueUnsupported, QueueSupported).
// Due times and leases are on the server's clock like everything else.
//
// # One clock
//
// "Now" is always the Redis server's clock: the scripts call TIME and take
// no time from the caller. Lease expiry, claim and completion times and the
// TTLs of every gateway sharing the Redis are measured on that one clock,
// so gateways whose clocks disagree still agree on when a lease has ended.
// The stored fields (c, l, d) and the TTLs are server times.
//
// The records the store returns (Claim's, Get's, Scan's) have their times
// translated to the caller's clock (time.Now), so that a caller may compare
// them with its own: a duplicate that waits for the first copy until
// Record.LeaseExpiry waits as long as the lease has left, whatever the skew
// between the gateway and Redis. Each script reply carries the server's
// TIME of that run; the store keeps one estimate of the offset between the
// clocks and checks it against every call (that TIME was read between the
// call's sending and its reply, on the local clock), moving it only as far
// as a call shows it wrong, so the translation is accurate to within a
// round trip and the same record reads the same by successive calls. All
// four times of a record (ClaimedAt, LeaseExpiry, CompletedAt, ExpiresAt)
// move by the same offset, keeping the lease and the retention exact
// between them: ClaimedAt and CompletedAt too are when the claim and the
// completion happened as the caller's clock would have read then (within
// a round trip), not the server's readings. The decisions (has a lease
// ended, is a record expired) stay the server's: a caller's clock that is
// wrong only shifts the times it is shown.
//
// # Retries
//
// go-redis retries a command after a broken connection (MaxRetries, default
// 1), and the first attempt may have run on the server before its reply was
// lost. Every script is safe to run twice: Claim proposes its token, and a
// claim that finds a record in flight under its own token is that same
// claim (reported Claimed again, unchanged); Complete carries a random
// nonce, and finding a done record under its token and nonce is that same
// completion (reported as success); Release deletes only under its token.
// Another Complete of a done record still gets ErrLeaseLost. The queue's
// scripts too: Enqueue completes its claim as Complete does; Lease keeps
// the items it leased in a journal named by its first token, and a call
// that finds its journal reports those items again; a settlement (Ack,
// Reject, Retry, DeadLetter, Unlease) and Redeliver leave their nonce on
// the item, and finding it there is that same call. A read timeout is
// where this matters most: go-redis sends the call again after
// ReadTimeout, while the first attempt waits in a stalled server's socket
// buffer and runs when the server resumes. A call that finds its own
// earlier attempt and reports success still writes (Complete and Enqueue
// set the record's TTL again, a settlement or Redeliver its nonce as it
// is): the wait of WaitAOF or WaitReplicas that follows it covers, on
// Redis 7.2+ and Valkey, only the writes of its own connection, and the
// earlier attempt's was made on another. (Lease is not waited for.)
//
// # Outages
//
// When Redis is down, unreachable or hung, calls fail with an error within
// the timeouts above (the gateway then answers U, never S without a
// record), and the client reconnects by itself when Redis returns: no
// reopening. While dials fail, go-redis logs each failure through its
// package-level logger (redis.SetLogger), by default on stderr in its own
// format; RouteClientLog sends those lines to zap instead, without
// passwords (Redact: the user information of URLs, and the passwords of
// open stores and of the last few closed ones; passwords under four bytes
// only in URLs) and at most one line of a kind per ClientLogEvery. The
// store's own errors never show the URL's user information: a URL that
// does not parse (a password with '/', '?', '#', '@' or '%' not
// percent-encoded) gets a fixed message naming its scheme only.
// Scan is bounded per round trip (Options.OperationTimeout), not as a
// whole.
//
// Open needs the server: it fails when it cannot reach it. Its error wraps
// idempotency.ErrInvalidArgument for bad options (Check finds those
// without connecting) and ErrServerRefused when the server answered but
// refused the configuration (wrong password, missing database, no
// WAITAOF); any other error (refused or timed-out connection, a server
// still loading) may pass by itself, and a caller that must start during
// an outage can retry Open until it succeeds.
//
// # Durability
//
// Complete returns when Redis has applied the completion: it is then in the
// server's memory, and what survives a crash depends on the server's
// persistence, which the gateway's guarantee ("a requestId acknowledged
// with S is never forwarded again within retention") inherits:
//
//   - appendonly yes, appendfsync everysec (recommended): Redis writes
//     every command to the append-only file before it replies, and fsyncs
//     the file once a second, with one exception: while the previous
//     second's background fsync is still running, Redis postpones its
//     writes (up to 2 s) and replies anyway. So even a crash of
//     redis-server alone (the host staying up) can lose what was
//     acknowledged in such a moment: not guaranteed, and not rare under
//     load (in one measurement about 0.7% of acknowledged completions were
//     not yet in the file when redis-server was killed, and 1 run in 400 of
//     the crash test lost one). The tests kill redis-server right after a
//     run of completions under everysec only to log what was lost; they
//     assert no loss under always only. A power cut or kernel crash of the
//     Redis host loses the last second or so of acknowledged completions
//     (up to about two when the disk is slow), whose requestIds a DWS retry
//     would then forward again.
//   - appendonly yes, appendfsync always: each write is fsynced before the
//     reply, so even a power cut loses no acknowledged completion (tested
//     for a crash: redis-server killed right after Complete returned loses
//     nothing), at a
//     fraction of the throughput of everysec (a sixth at one writer, under
//     half at 32 in BENCHMARKS.md: claims and completions each wait for
//     their fsync).
//   - Options.WaitAOF: Complete also waits for the local AOF fsync (WAITAOF
//     1 0, on the same connection as the completion) and fails when it is
//     not confirmed within Options.WaitAOFTimeout: the power-cut guarantee
//     of always for completions only, on an everysec server. It needs
//     WAITAOF, Redis 7.2 or Valkey 7.2 and later; Open refuses it on older
//     servers (Debian 12's redis-server is 7.0) and on servers without
//     appendonly. Off by default.
//   - RDB snapshots only (save ...): everything since the last snapshot is
//     lost on any restart, typically minutes of records.
//   - No persistence: a restart of Redis forgets every record.
//
// Losing a claim only makes its key claimable again (as with Badger);
// losing a completion lets the provider's retry through to the backend a
// second time. Two more server settings matter: maxmemory-policy must be
// noeviction, because an evicted record also lets a duplicate through (all
// records have a TTL, so the volatile-* policies evict them too; with
// noeviction a full Redis refuses writes, the calls fail and the gateway
// answers U); and replication is asynchronous, so a failover to a replica
// can lose the last acknowledged completions (see Failover). Open logs a
// warning when CONFIG GET shows appendonly off,
// appendfsync no or an evicting policy; on servers that refuse CONFIG (as
// managed services often do) it logs one info line saying the settings
// could not be checked.
//
// # Failover
//
// With Sentinel, a primary that stops answering is replaced by a replica
// once the sentinels agree it is down (down-after-milliseconds, then an
// election and the promotion: about a second more). Until then every call
// fails within the operation timeout (the caller answers U); the client
// then asks the sentinels again and reaches the new primary by itself, and
// the store needs no reopening.
//
// Replication is asynchronous: the primary answers a completion before its
// replicas have it, so a failover loses what the promoted replica had not
// yet received, usually the last milliseconds of writes, more when the
// replica lagged (the primary's min-replicas-to-write and
// min-replicas-max-lag settings bound that lag). A lost completion leaves
// the claim in flight (or, if the claim was lost too, nothing), so the
// provider's next resend is forwarded again; a lost claim only frees the
// requestId. Options.WaitReplicas closes the window for completions: after
// the completion, WAIT n (WAITAOF 1 n with WaitAOF) on the same
// connection, and Complete succeeds only when n replicas acknowledged it,
// so an acknowledged completion is on at least n replicas (on every one
// when n is their number, whichever Sentinel promotes). Completions then
// fail (U) while fewer than n replicas are connected: run n+1 replicas to
// keep serving through the loss of one. A copy that finds the record done
// is replayed only after the same wait (a rewrite of the record's expiry,
// then WAIT): the completion's own wait may have failed, or may still
// run. Get does not wait; a duplicate that read the record with Get while
// it waited for the first copy calls ConfirmDone, which does. So an S is
// never answered for a record the wait did not confirm.
// The same holds for WaitAOF. Cluster failovers behave alike (a replica
// takes over the slots of a failed primary), but the store offers no wait
// there.
//
// # Servers
//
// The scripts use only long-standing commands (TIME, TYPE, HMGET, HLEN,
// HSET with several fields, DEL, PEXPIRE, PTTL; TIME before writes needs
// the script effects replication that is the default since Redis 5), so
// Redis 6.2 and later and Valkey are expected to work; the tests run
// against Redis 7.0.15 (Debian 12) only: single server (RESP2 and RESP3),
// with a password and a database, over TLS (a private CA, a client
// certificate, a server name), over a Unix socket, through Sentinel (a
// primary, replicas, three sentinels; redis-sentinel 7.0.15) and as a
// three-primary cluster. On a Cluster or a Ring, Scan walks every primary
// or shard in turn.
package redisstore

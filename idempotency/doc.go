// Package idempotency deduplicates DWS notifications by (Client-Id, API,
// requestId): the Store interface and its implementation on an embedded
// Badger v4 database, which dedupes per gateway instance. The
// implementation on Redis or Valkey, for fleets of gateways that dedupe
// together, is the subpackage redisstore; both pass the conformance suite
// in storetest. It does not import Caddy.
//
// # Semantics
//
// A record is absent, in flight or done:
//
//	absent --Claim--> in flight (fingerprint, token, lease) --Complete--> done (answer)
//	                  in flight --Release--> absent
//	                  in flight, lease expired --Claim--> in flight (new token)
//
// Claim is one atomic check-and-set: of any number of concurrent claimers of
// a key exactly one gets Claimed and must forward the notification; the
// others learn that it is in flight (and until when), that it is done (and
// the answer to replay), or that the key was stored with another fingerprint
// (REPEAT_REQ_INCONSISTENT). A lease that expires makes the key claimable
// again, so a crash between Claim and Complete never blocks a requestId;
// the claimer whose lease was taken over gets ErrLeaseLost from Complete.
// Release removes a claim whose forwarding failed, so the provider's retry
// goes through. Records expire after their retention.
//
// Records keep no request content: the key, a fingerprint, the state, a
// claim token, the answer (result code, outcome, backend status) and times.
// The value encoding is a versioned binary layout of 58 bytes in flight and
// 77 bytes for a typical done record (see codec.go); decoding rejects
// anything else with ErrCorruptRecord.
//
// # Queue
//
// Queue (queue.go) is the durable inbox of acknowledge on_receipt, an
// interface beside Store: Enqueue stores an opaque (sealed) payload and
// completes the claim as queued; Lease hands out due items one per order
// key, in arrival order; Ack, Reject, Retry, DeadLetter and Unlease settle
// a lease; Redeliver puts dead letters back. The Badger layout and its
// concurrency are described in badger_queue.go; docs/inbox.md has the
// whole mode.
//
// # Badger store
//
// Claim is a read-write transaction that Gets the key (Badger records the
// read even when the key is missing) and sets the new record; a concurrent
// commit to the key makes the Commit fail with badger.ErrConflict, after
// which the claim re-reads and reports what the winner wrote. Complete and
// Release are read-check-write transactions on the claim's token, retried
// the same way. Retention is Badger's entry TTL, rounded up to the next whole
// second; expired records are invisible at once and their space is reclaimed
// by compaction. Lease times use BadgerOptions.Now (the wall clock by
// default).
//
// Durability (BadgerOptions.Sync): by default transactions commit without
// fsync, and Complete then waits for a group-commit round: a single goroutine
// fsyncs Badger's memtable logs and releases every Complete that committed
// before the round began. A Claim that finds a done record, and
// ConfirmDone, wait for a round too before the record is replayed: it is
// visible once committed, perhaps before its fsync. Under load one fsync covers many completions; see
// BENCHMARKS.md for the measured syncs per completion. On Linux the logs are
// fsynced through file descriptors rather than with db.Sync, which would hold
// the DB lock that every write needs for the length of the fsync (see
// syncDurable in badger.go). The descriptors stay open between rounds; an
// inotify watch on the directory says when Badger created or deleted a log,
// and only then does a round list the directory again (see memLogFiles). Claims and releases are not synced: after a
// power cut a lost claim only makes its key claimable again. A process crash
// loses nothing that was committed, fsync or not, because Badger writes
// through shared memory maps.
//
// The store fails stop (failstop.go): commits run one at a time, and once
// a commit fails (Badger could not create its next memtable log: the
// directory became unwritable, or no descriptors were left) or a Badger
// call panics, every operation returns an error wrapping ErrFailed without
// calling Badger again, whose next write would otherwise exit the process.
// What was acknowledged before stays in the memtable logs; the caller
// closes the store and opens it again.
//
// Background work is tied to the store's lifetime, not to a configuration:
// OpenBadger starts the group-commit goroutine, a value-log GC ticker
// (BadgerOptions.GCInterval, default 10 minutes, RunValueLogGC(0.5) in a
// loop while it rewrites) and, on Linux, a page-out ticker
// (BadgerOptions.PageOutInterval, default 10 seconds, see below); Close
// stops all three. Close is idempotent, waits for
// running operations and makes every later call return ErrClosed, including
// calls that race with it. Badger's log lines go to the zap logger, named
// "badger": errors and warnings as such, its info lines at debug level and
// its per-write debug lines nowhere (unless VerboseBadgerLogs).
//
// # Sidecar profile
//
// Badger's defaults are sized for a database server (five 64 MB memtables,
// a 256 MB block cache: about 0.5 GB of Go memory reserved). BadgerProfile
// sizes it for records of about a hundred bytes in a sidecar:
//
//	MemTableSize            4 MB    (each memtable also has an 8 MB sparse, mmapped log)
//	NumMemtables            2
//	NumLevelZeroTables      2, stall at 4
//	Compression             none, so BlockCacheSize can be 0 (0 with compression panics at Open)
//	IndexCacheSize          16 MB   (table indexes and bloom filters; bounded)
//	ValueThreshold          512 KB  (records and queued payloads stay in the LSM tree; the value log stays empty)
//	ValueLogFileSize        64 MB
//	NumCompactors           2       (1 is rejected by Badger)
//	DetectConflicts         true    (claims depend on it; OpenBadger refuses false)
//	MetricsEnabled          false   (Badger's expvar metrics; the gateway has its own)
//
// The memtable size drives most of Badger's Go memory: each memtable's arena
// is about 1.3 times MemTableSize and is allocated up front, and the buffers
// of the table builders (flushes and compactions), which Badger pools, grow
// to the size of the tables they build. With 16 MB memtables the Go heap
// after a million records was about three times larger than with 4 MB ones,
// with no consistent difference in write time. Without compression records
// take about 110 bytes each on disk.
//
// Badger writes each table through a shared memory map and keeps it mapped,
// so every table the process wrote stays resident: file-backed memory that
// the kernel could reclaim, but that counts in the process's RSS (and a
// container's working set) and grows with the store, about 100 MiB per
// million records. The store reads its tables rarely (a claim looks up an
// absent key, which the Bloom filters in the index cache answer), so every
// PageOutInterval it advises the kernel to reclaim the tables' pages
// (madvise MADV_PAGEOUT over the *.sst mappings listed in /proc/self/maps;
// Linux 5.4 or later, elsewhere nothing happens). No data can be lost:
// MADV_PAGEOUT writes dirty pages back before it drops them, and a page read
// again faults back in from the file. Compression would shrink the tables
// too, but it needs a block cache and trades file-backed memory for
// anonymous memory, which the kernel cannot reclaim (measured at a million
// records: Snappy -57 MiB file-backed, +43 MiB anonymous; ZSTD -74, +150).
//
// The memory and disk figures measured with this profile, with 16 MB
// memtables and with Badger's defaults are in BENCHMARKS.md (section
// idempotency), with the command that produced them. BadgerOptions.Tune can
// adjust the profile.
package idempotency

// Package cluster lets two or three campaignd nodes share one PostgreSQL
// database: it elects the one node that sends (Elector) and carries wake-ups
// between nodes (Notifier). Every node serves FTP, the console, the API and
// metrics; only the leader holds the SMPP binds and runs the engine, the
// timing wheel and the reporter.
//
// # Leader election: a lease row, not an advisory lock
//
// The leader holds a lease in one row, cluster_leader(id = 1, node, instance,
// addr, epoch, since, expires_at). A candidate takes it with one UPDATE that
// succeeds only when the lease has expired by the database's clock (or is its
// own), and bumps epoch; the leader renews it every Renew (2 s) with an
// UPDATE that succeeds only for its own instance and epoch. The lease lasts
// TTL (10 s).
//
// A session advisory lock on a dedicated connection was the alternative. It
// was not chosen because its release depends on PostgreSQL noticing that the
// holder's connection is gone: immediate when a process dies on a healthy
// network, but after a partition or a power loss only when the server's TCP
// keepalives (or, with unacknowledged data in flight, its retransmission
// timeout, up to ~15 minutes unless tcp_user_timeout is set) give up.
// Those are server settings a managed PostgreSQL may not let us tune, and
// meanwhile the old leader cannot know when the server will drop it, so it
// cannot compute a safe moment to stop. Advisory locks also do not pass
// through a transaction-pooling PgBouncer and are not replicated to a
// standby. A lease has none of these problems:
//
//   - Its expiry is decided by one clock, the database's now(); the nodes'
//     clocks are never compared with it or with each other.
//   - The leader can bound its own term with its monotonic clock alone: a
//     renewal sent at local time t that succeeds proves the lease runs until
//     at least t + TTL, because the database executed it after t. The leader
//     steps down (cancels its context, IsLeader turns false, OnChange(false))
//     at t + TTL - Renew for the last such t, whatever its connection is
//     doing, so it has stopped Renew (2 s) before anyone else may take over.
//     Two nodes never lead at once as long as the leader's work stops within
//     that margin of its context being cancelled.
//   - The epoch, the fencing token, is in the same row and increases by one
//     with every term, in the same statement that grants it.
//
// The price is that a dead leader is replaced only when its lease expires:
// within TTL + Renew (about 12 s, under the 15 s required) after its last
// renewal. A leader that stops cleanly (its Run's context is cancelled, or
// its lead function returns) resigns by expiring its lease, so another node
// takes over at its next attempt, within Renew.
//
// One assumption remains: the database's clock must not jump forward by
// more than Renew while a lease runs (a stepped NTP correction on the
// database server); PostgreSQL's now() is wall-clock time. Slewing, and any
// error in the nodes' clocks, do no harm.
//
// Writers that want the database itself to refuse a deposed leader's late
// writes call Fence(ctx, tx, epoch) in their transaction: it checks the
// term still holds the lease and share-locks the leader row, so no takeover
// commits before the write does.
//
// The elector uses its own connection, not the store's pool, so a pool
// saturated by sending cannot delay a renewal and cost the leadership. With
// a Notifier that makes three dedicated connections per node (elector,
// listen, notify) on top of the store's pool; the listening one must be a
// real session (LISTEN does not survive transaction pooling).
//
// # Wake-ups
//
// Notifier carries NOTIFY/LISTEN messages on a dedicated connection and
// re-LISTENs after a reconnect. PostgreSQL drops notifications sent while a
// listener is disconnected, so a receiver must treat the empty payload "" as
// "you may have missed something: re-scan the state". The Notifier sends ""
// on a channel returned by Listen when the LISTEN is first in effect, after
// every reconnect, and when the receiver fell so far behind that payloads
// were dropped. Payloads are hints; the database is the truth.
package cluster

-- The store's ordered key-value engine on PostgreSQL (store/kv_pg.go): one
-- table of keys and values. bytea compares bytewise (no collation), so the
-- primary key's B-tree gives the same order as Badger, and prefix scans are
-- index range scans.
--
-- fillfactor 90 leaves room on each page for HOT updates of the small keys
-- that change often (message states, counts, timers); row chunks (tens of KB)
-- are TOASTed out of line, so their heap tuples are small pointers and do not
-- need a table of their own.
CREATE TABLE kv (
    k          bytea       PRIMARY KEY,
    v          bytea       NOT NULL,
    expires_at timestamptz NULL
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);

-- Only keys with a TTL (sessions, receipt-match records) are in this index:
-- it is what Maintain deletes expired keys by.
CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;

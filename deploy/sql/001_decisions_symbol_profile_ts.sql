-- Optional: a composite index that turns trading-heal-probe's per-agent newest-decision lookup
-- into a single backward index probe, whatever the table's size.
--
-- The probe does not need it: on the operators' indexes alone ((timestamp), (symbol),
-- (symbol, profile)) its fleet query is one range scan of the (timestamp) index over the rows
-- written since the previous cycle, shared by the whole fleet, and the newest timestamp of each
-- (symbol, profile) is remembered across cycles; only the first lookup of an agent after the
-- probe starts searches further back, in bounded time slices spread over a few cycles. With
-- this index (detected when the probe connects) that first lookup is one backward index
-- descent per agent instead. Measured figures: bench/probe/README.md.
--
-- CONCURRENTLY: builds without blocking the agents' INSERTs. It cannot run inside a
-- transaction block, so run this file with plain psql (not `psql -1`, not `--single-transaction`):
--   psql "$DATABASE_URL_OF_AN_OWNER" -v ON_ERROR_STOP=1 -f 001_decisions_symbol_profile_ts.sql
-- If the build is interrupted, PostgreSQL leaves an INVALID index behind and IF NOT EXISTS then
-- skips it: drop it (DROP INDEX CONCURRENTLY btc.decisions_symbol_profile_ts_idx) and rerun.
CREATE INDEX CONCURRENTLY IF NOT EXISTS decisions_symbol_profile_ts_idx
  ON btc.decisions (symbol, profile, "timestamp");

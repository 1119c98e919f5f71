-- The operators' trading schema (columns and indexes exactly as their database has them), plus the
-- two roles the testbed uses. Run by tests/bed/bed.sh as the superuser on a fresh cluster.
-- Their passwords are set by bed.sh at each start (loopback TCP asks for them).
CREATE SCHEMA btc;

-- `id serial` without PRIMARY KEY: the operators' database has the indexes below, and a unique index on id
-- is not among them (a probe must not come to rely on one).
CREATE TABLE btc.decisions (
  id          serial,
  "timestamp" double precision NOT NULL,  -- Unix epoch seconds, the agent's own clock
  symbol      text NOT NULL,              -- BTC-USDT
  action      text NOT NULL,              -- BUY / SELL / HOLD
  confidence  double precision,
  price       double precision,
  reason      text,
  executed    boolean,
  trade_id    integer,
  features    jsonb,
  servidor    text NOT NULL DEFAULT 'homelab',
  profile     text NOT NULL DEFAULT 'default'
);
-- The operators' indexes, and only these: no composite with timestamp (the probe's query plan
-- must cope with what production has).
CREATE INDEX decisions_timestamp_idx ON btc.decisions ("timestamp");
CREATE INDEX decisions_symbol_idx ON btc.decisions (symbol);
CREATE INDEX decisions_symbol_profile_idx ON btc.decisions (symbol, profile);

CREATE TABLE btc.trades (
  id          serial,
  "timestamp" double precision NOT NULL,
  symbol      text NOT NULL,
  profile     text NOT NULL DEFAULT 'default',
  side        text,
  price       double precision,
  size        double precision,
  status      text,
  pnl         double precision,
  metadata    jsonb,
  created_at  timestamptz DEFAULT now()
);

-- The agents' role: writes decisions and trades.
CREATE ROLE crypto_agent LOGIN;
GRANT USAGE ON SCHEMA btc TO crypto_agent;
GRANT SELECT, INSERT ON btc.decisions, btc.trades TO crypto_agent;
GRANT USAGE, SELECT ON SEQUENCE btc.decisions_id_seq, btc.trades_id_seq TO crypto_agent;

-- trading-heal's probe: read-only, twice over (grants and the session default).
CREATE ROLE trading_heal_ro LOGIN;
ALTER ROLE trading_heal_ro SET default_transaction_read_only = on;
GRANT USAGE ON SCHEMA btc TO trading_heal_ro;
GRANT SELECT ON btc.decisions, btc.trades TO trading_heal_ro;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

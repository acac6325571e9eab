-- Fleet operations: time budgets and partial runs, tenant health ("error since"), cumulative
-- counters for metrics, run-history retention, lock fencing, adaptive sub-windows and sweeps.

-- A run cut short by its time budget is `partial`; a tenant that could not start in a run
-- (deadline reached, no database connection) gets a `skipped` run with the reason.
ALTER TABLE sync_runs DROP CONSTRAINT IF EXISTS sync_runs_outcome_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_outcome_check
    CHECK (outcome IN ('running', 'success', 'partial', 'failed', 'abandoned', 'skipped'));
ALTER TABLE sync_runs
    ADD COLUMN pages             integer NOT NULL DEFAULT 0,  -- order pages committed
    ADD COLUMN backlog_orders    integer,                     -- estimated orders left when it ended
    ADD COLUMN catch_up_secs     integer,                     -- estimated time to catch up at Amazon's rates
    ADD COLUMN fence             bigint;                      -- the fencing token the run held
-- Retention prunes by age.
CREATE INDEX sync_runs_started_idx ON sync_runs (started_at);

ALTER TABLE marketplace_sync_state
    -- The first failure after the last success (last_error_at moves on every failure).
    ADD COLUMN error_since       timestamptz,
    -- Fencing token: every pass that takes the tenant's lock increments it, and every commit of
    -- a pass checks it, so a pass that lost its lock to another commits nothing more.
    ADD COLUMN fence             bigint NOT NULL DEFAULT 0,
    -- The length of delta sub-window that completes within one pass; NULL: the whole window.
    ADD COLUMN window_span_secs  integer,
    -- The last completed sweep (a periodic deeper re-read for updates indexed very late).
    ADD COLUMN last_sweep_at     timestamptz,
    -- What the last pass estimated was left, for status.
    ADD COLUMN backlog_orders    integer,
    ADD COLUMN catch_up_secs     integer;

-- Cumulative counters per tenant, for metrics: never reset, never pruned, written in the same
-- transaction as the work they count (a page and its calls, a run's end).
CREATE TABLE sync_counters (
    tenant_id  text   NOT NULL,
    metric     text   NOT NULL,             -- orders_written, items_written, api_calls, api_throttled, runs
    operation  text   NOT NULL DEFAULT '',  -- api_*: Amazon's operation name
    command    text   NOT NULL DEFAULT '',  -- runs: delta, items, backfill
    outcome    text   NOT NULL DEFAULT '',  -- runs: success, partial, failed, skipped
    value      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, metric, operation, command, outcome)
);

-- Orders Amazon sent that could not be read (an unknown status, a malformed amount, a duplicate
-- item id): kept as sent, with the reason, instead of stalling the tenant's cursor on them. A
-- later readable copy of the same order removes its row.
CREATE TABLE order_quarantine (
    tenant_id         text        NOT NULL,
    marketplace       text        NOT NULL DEFAULT 'AMAZON',
    external_order_id text        NOT NULL,              -- 'unidentified:<md5 of raw>' without an id
    source_api        text        NOT NULL,
    raw               jsonb       NOT NULL,
    error             text        NOT NULL,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, marketplace, external_order_id)
);

ALTER TABLE sync_runs
    ADD COLUMN orders_quarantined integer NOT NULL DEFAULT 0;  -- orders Amazon sent that could not be read

-- When fetching an order's items last failed or was deferred: the items catch-up serves the
-- orders never tried first, then the longest waiting, so a few orders that always fail cannot
-- starve the others.
ALTER TABLE orders ADD COLUMN items_attempted_at timestamptz;
DROP INDEX orders_items_stale_idx;
CREATE INDEX orders_items_stale_idx ON orders (tenant_id, items_attempted_at NULLS FIRST, last_update_date DESC)
    WHERE items_stale;

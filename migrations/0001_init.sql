-- keybuzz-sync schema. Times are timestamptz (UTC); money is numeric, never float.

CREATE TABLE orders (
    id                   bigserial   PRIMARY KEY,
    tenant_id            text        NOT NULL,
    marketplace          text        NOT NULL DEFAULT 'AMAZON',
    external_order_id    text        NOT NULL,           -- AmazonOrderId / orderId
    marketplace_id       text,
    status               text        NOT NULL,           -- v2026 vocabulary, for both API versions
    purchase_date        timestamptz NOT NULL,
    last_update_date     timestamptz NOT NULL,
    fulfillment_channel  text,                           -- AFN | MFN
    order_total_amount   numeric,
    order_total_currency text,
    source_api           text        NOT NULL,           -- v0 | 2026-01-01: the API that wrote raw
    raw                  jsonb       NOT NULL,           -- the order exactly as Amazon sent it
    -- Items bookkeeping: true while the stored items are missing or may be out of date.
    items_stale          boolean     NOT NULL DEFAULT true,
    items_fetched_at     timestamptz,
    items_fetched_status text,                           -- order status when items were fetched
    items_error          text,                           -- why the last items fetch failed
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_tenant_order_key UNIQUE (tenant_id, marketplace, external_order_id),
    CONSTRAINT orders_status_check CHECK (status IN ('PENDING_AVAILABILITY', 'PENDING', 'UNSHIPPED',
        'PARTIALLY_SHIPPED', 'SHIPPED', 'CANCELLED', 'UNFULFILLABLE', 'INVOICE_UNCONFIRMED'))
);
CREATE INDEX orders_tenant_last_update_idx ON orders (tenant_id, last_update_date DESC);
CREATE INDEX orders_tenant_purchase_idx ON orders (tenant_id, purchase_date DESC);
CREATE INDEX orders_items_stale_idx ON orders (tenant_id, last_update_date DESC) WHERE items_stale;

CREATE TABLE order_items (
    id                        bigserial   PRIMARY KEY,
    tenant_id                 text        NOT NULL,
    marketplace               text        NOT NULL DEFAULT 'AMAZON',
    external_order_id         text        NOT NULL,
    order_item_id             text        NOT NULL,
    asin                      text,
    seller_sku                text,
    title                     text,
    quantity_ordered          integer     NOT NULL,
    quantity_shipped          integer,
    item_price_amount         numeric,                   -- unit price x quantity (v0 ItemPrice)
    item_tax_amount           numeric,
    shipping_price_amount     numeric,
    promotion_discount_amount numeric,                   -- positive
    currency                  text,
    raw                       jsonb       NOT NULL,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_items_key UNIQUE (tenant_id, marketplace, external_order_id, order_item_id),
    CONSTRAINT order_items_order_fkey FOREIGN KEY (tenant_id, marketplace, external_order_id)
        REFERENCES orders (tenant_id, marketplace, external_order_id) ON DELETE CASCADE
);

CREATE TABLE marketplace_sync_state (
    tenant_id            text        NOT NULL,
    type                 text        NOT NULL DEFAULT 'AMAZON',
    cursor               timestamptz,                    -- LastUpdatedAfter of the next window, before overlap
    last_polled_at       timestamptz,
    last_success_at      timestamptz,
    last_error           text,
    last_error_at        timestamptz,
    -- An interrupted window: its bounds and the page token to continue from.
    resume_api           text,
    resume_after         timestamptz,
    resume_before        timestamptz,
    resume_token         text,
    resume_saved_at      timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, type)
);

CREATE TABLE sync_runs (
    id               bigserial   PRIMARY KEY,
    tenant_id        text        NOT NULL,
    command          text        NOT NULL,               -- delta | items
    orders_api       text        NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    outcome          text        NOT NULL DEFAULT 'running'
        CHECK (outcome IN ('running', 'success', 'failed', 'abandoned')),
    window_after     timestamptz,
    window_before    timestamptz,
    orders_upserted  integer     NOT NULL DEFAULT 0,
    items_upserted   integer     NOT NULL DEFAULT 0,
    items_pending    integer,                            -- orders still waiting for items at the end
    api_calls        integer     NOT NULL DEFAULT 0,
    throttled        integer     NOT NULL DEFAULT 0,     -- 429 answers
    error            text
);
CREATE INDEX sync_runs_tenant_started_idx ON sync_runs (tenant_id, started_at DESC);

-- Client-side token buckets, carried from one process to the next (see src/spapi/pacing.rs).
CREATE TABLE api_rate_buckets (
    tenant_id  text             NOT NULL,
    operation  text             NOT NULL,
    rate       double precision NOT NULL,
    burst      double precision NOT NULL,
    tokens     double precision NOT NULL,
    saved_at   timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, operation)
);

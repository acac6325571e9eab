-- Imports through Amazon's Reports API (GET_XML_ALL_ORDERS_DATA_BY_*_GENERAL): the report jobs
-- of each tenant, the items a report gives without an id, and where every row came from.

-- One row per report window of a tenant. A pass requests the reports it needs and records them
-- here; later passes poll them and import those that are done, so no run waits for Amazon's
-- queue. See src/sync/reports/job.rs for the state machine.
CREATE TABLE report_jobs (
    id                  bigserial   PRIMARY KEY,
    tenant_id           text        NOT NULL,
    purpose             text        NOT NULL CHECK (purpose IN ('backfill', 'initial')),
    report_type         text        NOT NULL,
    data_start          timestamptz NOT NULL,
    data_end            timestamptz NOT NULL,
    -- queued: to request; requested: Amazon is generating it; ready: done, document to import;
    -- imported / empty (Amazon CANCELLED it: no data in the window) / failed: terminal.
    status              text        NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'requested', 'ready', 'imported', 'empty', 'failed')),
    report_id           text,                            -- the current report (unique per seller)
    processing_status   text,                            -- Amazon's last answer (IN_QUEUE, ..., FATAL)
    document_id         text,
    previous_report_ids text[]      NOT NULL DEFAULT '{}', -- reports given up on (FATAL, stuck)
    requests            integer     NOT NULL DEFAULT 0,  -- createReport calls accepted for the window
    failures            integer     NOT NULL DEFAULT 0,  -- FATAL, stuck, or an import that broke off
    requested_at        timestamptz,                     -- when the current report was created
    polled_at           timestamptz,
    done_at             timestamptz,                     -- when Amazon's answer became terminal
    imported_at         timestamptz,
    -- Messages (orders) of the current document committed so far: an interrupted import
    -- resumes after them. Reset when a new report replaces the current one.
    messages_done       integer     NOT NULL DEFAULT 0,
    orders_imported     integer     NOT NULL DEFAULT 0,  -- orders the report wrote
    orders_skipped      integer     NOT NULL DEFAULT 0,  -- a stored copy was newer, or an API copy tied
    orders_foreign      integer     NOT NULL DEFAULT 0,  -- another marketplace than the tenant's
    orders_quarantined  integer     NOT NULL DEFAULT 0,  -- unreadable (order_quarantine)
    items_imported      integer     NOT NULL DEFAULT 0,
    items_staged        integer     NOT NULL DEFAULT 0,  -- without AmazonOrderItemCode
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT report_jobs_window_check CHECK (data_start < data_end)
);
CREATE UNIQUE INDEX report_jobs_window_key
    ON report_jobs (tenant_id, purpose, report_type, data_start, data_end);
CREATE INDEX report_jobs_open_idx ON report_jobs (tenant_id, data_start)
    WHERE status IN ('queued', 'requested', 'ready');

-- Items of (Pending) orders that a report listed without an AmazonOrderItemCode: they cannot go
-- into order_items (whose key is the item id), and are never dropped. Their order is marked
-- items_stale, so the Orders API fetches the items with their ids; the rows here are deleted in
-- the transaction that stores those items.
CREATE TABLE report_staged_items (
    tenant_id         text        NOT NULL,
    marketplace       text        NOT NULL DEFAULT 'AMAZON',
    external_order_id text        NOT NULL,
    position          integer     NOT NULL,  -- the item's place in its <Order> (from 1): its only key
    source_api        text        NOT NULL,  -- report:<reportType>:<reportId>
    asin              text,
    seller_sku        text,
    title             text,
    quantity_ordered  integer     NOT NULL,
    item_status       text,
    raw               jsonb       NOT NULL,
    staged_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, marketplace, external_order_id, position),
    CONSTRAINT report_staged_items_order_fkey FOREIGN KEY (tenant_id, marketplace, external_order_id)
        REFERENCES orders (tenant_id, marketplace, external_order_id) ON DELETE CASCADE
);

-- Provenance of item rows, like orders.source_api: v0, 2026-01-01, or
-- report:<reportType>:<reportId>. NULL on rows written before this migration (by the Orders API
-- named in their order's source_api).
ALTER TABLE order_items ADD COLUMN source_api text;
COMMENT ON COLUMN orders.source_api IS
    'v0 | 2026-01-01 | report:<reportType>:<reportId>: what wrote raw and the normalized columns last';

-- crm-segmentation's own store; one text for PostgreSQL and SQLite. Times are
-- microseconds since the epoch, so day arithmetic is the same integer SQL on both.

-- What segmentation knows of each customer, from customer-core's `customer.*` snapshots.
create table profiles (
    customer_id      uuid primary key,
    -- The snapshot's version; an older snapshot never overwrites a newer one.
    version          bigint not null,
    deleted          boolean not null,
    -- The segment customer-core stores (as of that snapshot).
    segment          text not null,
    created_at_us    bigint not null,
    total_orders     bigint not null,
    total_spent      double precision not null,
    lifetime_value   double precision not null,
    last_order_at_us bigint,
    -- Preferred categories, a JSON array.
    categories       text not null,
    rfm_recency      smallint,
    rfm_frequency    smallint,
    rfm_monetary     smallint,
    rfm_segment      text,
    rfm_computed_us  bigint
);

-- The quintile bounds of the last batch (one row).
create table rfm_bounds (
    id     integer primary key check (id = 1),
    bounds text not null
);

create table recompute_jobs (
    id             uuid primary key,
    status         text not null check (status in ('running', 'completed', 'failed')),
    phase          text not null,
    total          bigint not null,
    processed      bigint not null,
    changed        bigint not null,
    error          text,
    started_at_us  bigint not null,
    heartbeat_us   bigint not null,
    finished_at_us bigint
);
-- At most one batch runs at a time, whichever replica started it.
create unique index recompute_jobs_one_running on recompute_jobs (status) where status = 'running';

-- What recommendations learn from: completed orders' items and product views.
create table purchases (
    customer_id uuid not null,
    order_id    text not null,
    product_id  text not null,
    quantity    bigint not null,
    at_us       bigint not null,
    primary key (customer_id, order_id, product_id)
);
create index purchases_by_product on purchases (product_id);

create table product_views (
    customer_id uuid not null,
    product_id  text not null,
    views       bigint not null,
    last_at_us  bigint not null,
    primary key (customer_id, product_id)
);
create index product_views_by_product on product_views (product_id);

-- A product's category, as the last event that named one said.
create table products (
    product_id text primary key,
    category   text not null
);

-- Events already applied to the tables above (redelivery applies nothing twice).
create table applied_events (
    id uuid primary key
);

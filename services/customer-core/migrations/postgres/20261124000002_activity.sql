-- Every event of a customer's activity, idempotent by event id.
create table customer_events (
    id          uuid primary key,
    customer_id uuid not null references customers (id),
    type        text not null,
    data        jsonb not null,
    source      text not null,
    occurred_at timestamptz not null,
    -- Microseconds since the epoch: the portable sort key of the activity feed.
    sort_key    bigint not null,
    recorded_at timestamptz not null
);
create index customer_events_feed on customer_events (customer_id, sort_key desc, id desc);

-- Projections kept from the events.
create table orders (
    customer_id  uuid not null references customers (id),
    order_id     text not null,
    status       text not null check (status in ('placed', 'completed')),
    total        double precision not null,
    currency     text not null,
    items        jsonb not null,
    placed_at    timestamptz,
    completed_at timestamptz,
    primary key (customer_id, order_id)
);

create table support_tickets (
    customer_id uuid not null references customers (id),
    ticket_id   text not null,
    subject     text not null,
    status      text not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null,
    primary key (customer_id, ticket_id)
);

create table product_views (
    customer_id    uuid not null references customers (id),
    product_id     text not null,
    category       text,
    views          bigint not null,
    last_viewed_at timestamptz not null,
    primary key (customer_id, product_id)
);

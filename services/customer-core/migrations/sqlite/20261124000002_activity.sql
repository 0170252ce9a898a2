-- As on PostgreSQL (see there).
create table customer_events (
    id          blob primary key,
    customer_id blob not null references customers (id),
    type        text not null,
    data        text not null,
    source      text not null,
    occurred_at text not null,
    sort_key    integer not null,
    recorded_at text not null
) strict;
create index customer_events_feed on customer_events (customer_id, sort_key desc, id desc);

create table orders (
    customer_id  blob not null references customers (id),
    order_id     text not null,
    status       text not null check (status in ('placed', 'completed')),
    total        real not null,
    currency     text not null,
    items        text not null,
    placed_at    text,
    completed_at text,
    primary key (customer_id, order_id)
) strict;

create table support_tickets (
    customer_id blob not null references customers (id),
    ticket_id   text not null,
    subject     text not null,
    status      text not null,
    created_at  text not null,
    updated_at  text not null,
    primary key (customer_id, ticket_id)
) strict;

create table product_views (
    customer_id    blob not null references customers (id),
    product_id     text not null,
    category       text,
    views          integer not null,
    last_viewed_at text not null,
    primary key (customer_id, product_id)
) strict;

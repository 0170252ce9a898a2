-- The same table as on PostgreSQL: uuids as 16-byte blobs, json as text,
-- timestamps as RFC 3339 text (all as sqlx encodes them).
create table customers (
    id               blob primary key,
    email            text not null,
    phone            text,
    first_name       text,
    last_name        text,
    status           text not null check (status in ('active', 'inactive', 'blocked', 'deleted')),
    segment          text not null check (segment in ('new', 'regular', 'vip', 'churned', 'at_risk')),
    tags             text not null default '[]',
    addresses        text not null default '[]',
    preferences      text not null,
    total_orders     integer not null default 0,
    total_spent      real not null default 0,
    average_order    real not null default 0,
    first_order_date text,
    last_order_date  text,
    lifetime_value   real not null default 0,
    nps              integer check (nps between 0 and 10),
    version          integer not null check (version > 0),
    created_at       text not null,
    updated_at       text not null,
    last_activity_at text not null,
    merged_into      blob references customers (id)
) strict;

create unique index customers_email_live on customers (email) where status <> 'deleted';

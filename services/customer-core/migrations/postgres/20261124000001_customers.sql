create table customers (
    id               uuid primary key,
    email            text not null,
    phone            text,
    first_name       text,
    last_name        text,
    status           text not null check (status in ('active', 'inactive', 'blocked', 'deleted')),
    segment          text not null check (segment in ('new', 'regular', 'vip', 'churned', 'at_risk')),
    tags             jsonb not null default '[]',
    addresses        jsonb not null default '[]',
    preferences      jsonb not null,
    total_orders     bigint not null default 0,
    total_spent      double precision not null default 0,
    average_order    double precision not null default 0,
    first_order_date timestamptz,
    last_order_date  timestamptz,
    lifetime_value   double precision not null default 0,
    nps              integer check (nps between 0 and 10),
    version          bigint not null check (version > 0),
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    last_activity_at timestamptz not null,
    merged_into      uuid references customers (id)
);

-- One live customer per e-mail; deleted customers keep theirs for the record.
create unique index customers_email_live on customers (email) where status <> 'deleted';

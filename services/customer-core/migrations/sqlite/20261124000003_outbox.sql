-- As on PostgreSQL (see there).
create table outbox (
    seq         integer primary key autoincrement,
    id          blob not null unique,
    exchange    text not null,
    routing_key text not null,
    payload     text not null,
    created_at  text not null
) strict;

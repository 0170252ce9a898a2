-- Events of customer-core's own changes (customer.created, .updated, .deleted), written
-- in the transaction of the change and deleted by the relay once the broker confirmed
-- them: a crash between commit and publish delays an event, never loses it.
create table outbox (
    seq         bigserial primary key,
    id          uuid not null unique,
    exchange    text not null,
    routing_key text not null,
    payload     jsonb not null,
    created_at  timestamptz not null
);

-- The start of a multi-row insert: the VALUES rows follow.
insert into outbox (id, exchange, routing_key, payload, created_at)

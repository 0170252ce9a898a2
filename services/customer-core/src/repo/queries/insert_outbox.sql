insert into outbox (id, exchange, routing_key, payload, created_at)
values ($1, $2, $3, $4, $5)

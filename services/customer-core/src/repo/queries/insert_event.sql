insert into customer_events (id, customer_id, type, data, source, occurred_at, sort_key,
    recorded_at)
values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (id) do nothing

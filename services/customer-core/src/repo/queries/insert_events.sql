-- The start of a multi-row insert: the VALUES rows follow.
insert into customer_events (id, customer_id, type, data, source, occurred_at, sort_key,
    recorded_at)

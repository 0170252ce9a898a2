insert into orders (customer_id, order_id, status, total, currency, items, completed_at)
values ($1, $2, 'completed', $3, $4, $5, $6)
on conflict (customer_id, order_id) do update
set status = 'completed', total = excluded.total, currency = excluded.currency,
    items = excluded.items, completed_at = excluded.completed_at
where orders.status <> 'completed'

insert into orders (customer_id, order_id, status, total, currency, items, placed_at)
values ($1, $2, 'placed', $3, $4, $5, $6)
on conflict (customer_id, order_id) do update
set total = excluded.total, currency = excluded.currency, items = excluded.items,
    placed_at = excluded.placed_at
where orders.status = 'placed'

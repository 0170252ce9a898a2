select order_id, status, total, currency, items, placed_at, completed_at
from orders
where customer_id = $1
order by coalesce(completed_at, placed_at) desc, order_id desc
limit $2

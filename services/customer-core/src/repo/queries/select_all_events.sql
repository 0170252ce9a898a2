select id, customer_id, type, data, source, occurred_at
from customer_events
where customer_id = $1
order by sort_key, id

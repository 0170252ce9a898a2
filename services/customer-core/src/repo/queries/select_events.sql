select id, customer_id, type, data, source, occurred_at
from customer_events
where customer_id = $1 and ($2 is null or type = $2) and ($3 is null or (sort_key, id) <
    ($3, $4))
order by sort_key desc, id desc
limit $5

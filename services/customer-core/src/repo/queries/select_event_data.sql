select id, type, data
from customer_events
where customer_id = $1

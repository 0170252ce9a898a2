delete
from outbox
where payload ->> 'customer_id' = $1

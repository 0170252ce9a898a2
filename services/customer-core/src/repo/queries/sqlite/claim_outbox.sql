select seq, exchange, id, routing_key, payload
from outbox
order by seq
limit $1

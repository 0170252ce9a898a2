select total, completed_at
from orders
where customer_id = $1 and status = 'completed'

delete
from orders
where customer_id = $2 and order_id in (select order_id from orders where customer_id = $1)

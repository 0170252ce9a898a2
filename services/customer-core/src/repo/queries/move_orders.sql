update orders
set customer_id = $1
where customer_id = $2

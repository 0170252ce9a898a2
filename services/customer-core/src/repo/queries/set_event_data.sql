update customer_events
set data = $2
where id = $1

update support_tickets
set subject = ''
where customer_id = $1

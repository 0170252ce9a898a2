delete
from support_tickets
where customer_id = $2 and ticket_id in (select ticket_id from support_tickets where
    customer_id = $1)

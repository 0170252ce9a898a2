select ticket_id, subject, status, created_at, updated_at
from support_tickets
where customer_id = $1
order by updated_at desc, ticket_id desc
limit $2

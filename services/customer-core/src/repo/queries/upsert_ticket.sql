insert into support_tickets (customer_id, ticket_id, subject, status, created_at,
    updated_at)
values ($1, $2, $3, $4, $5, $5)
on conflict (customer_id, ticket_id) do update
set subject = excluded.subject, status = excluded.status, updated_at = excluded.updated_at

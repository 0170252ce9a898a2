-- The e-mails and the closing parenthesis follow.
select id, email, phone, first_name, last_name, status, segment, tags, addresses,
    preferences, total_orders, total_spent, average_order, first_order_date,
    last_order_date, lifetime_value, nps, version, created_at, updated_at,
    last_activity_at, merged_into, erased_at
from customers
where status <> 'deleted' and email in (

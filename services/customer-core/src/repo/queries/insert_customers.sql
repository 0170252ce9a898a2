-- The start of a multi-row insert: the VALUES rows follow, in INSERT's column order.
insert into customers (id, email, phone, first_name, last_name, status, segment, tags,
    addresses, preferences, total_orders, total_spent, average_order, first_order_date,
    last_order_date, lifetime_value, nps, version, created_at, updated_at,
    last_activity_at, merged_into, erased_at, email_key, first_name_key, last_name_key)

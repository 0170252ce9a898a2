insert into customers (id, email, phone, first_name, last_name, status, segment, tags,
    addresses, preferences, total_orders, total_spent, average_order, first_order_date,
    last_order_date, lifetime_value, nps, version, created_at, updated_at,
    last_activity_at, merged_into, erased_at, email_key, first_name_key, last_name_key)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
    $19, $20, $21, $22, $23, $24, $25, $26)

update customers
set email = $2, phone = $3, first_name = $4, last_name = $5, status = $6, segment = $7,
    tags = $8, addresses = $9, preferences = $10, total_orders = $11, total_spent = $12,
    average_order = $13, first_order_date = $14, last_order_date = $15,
    lifetime_value = $16, nps = $17, version = $18, created_at = $19, updated_at = $20,
    last_activity_at = $21, merged_into = $22, erased_at = $23, email_key = $24,
    first_name_key = $25, last_name_key = $26
where id = $1 and version = $27

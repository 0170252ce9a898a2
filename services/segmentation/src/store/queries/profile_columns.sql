customer_id, version, deleted, segment, created_at_us, total_orders, total_spent,
lifetime_value, last_order_at_us, categories, rfm_recency, rfm_frequency, rfm_monetary,
rfm_segment, rfm_computed_us

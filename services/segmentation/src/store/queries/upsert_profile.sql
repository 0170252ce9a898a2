-- Only a newer snapshot replaces the stored one; RFM scores are replaced when given.
insert into profiles (customer_id, version, deleted, segment, created_at_us, total_orders,
    total_spent, lifetime_value, last_order_at_us, categories, rfm_recency, rfm_frequency,
    rfm_monetary, rfm_segment, rfm_computed_us)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
on conflict (customer_id) do update set
    version = excluded.version,
    deleted = excluded.deleted,
    segment = excluded.segment,
    created_at_us = excluded.created_at_us,
    total_orders = excluded.total_orders,
    total_spent = excluded.total_spent,
    lifetime_value = excluded.lifetime_value,
    last_order_at_us = excluded.last_order_at_us,
    categories = excluded.categories,
    rfm_recency = coalesce(excluded.rfm_recency, profiles.rfm_recency),
    rfm_frequency = coalesce(excluded.rfm_frequency, profiles.rfm_frequency),
    rfm_monetary = coalesce(excluded.rfm_monetary, profiles.rfm_monetary),
    rfm_segment = coalesce(excluded.rfm_segment, profiles.rfm_segment),
    rfm_computed_us = coalesce(excluded.rfm_computed_us, profiles.rfm_computed_us)
where profiles.version < excluded.version

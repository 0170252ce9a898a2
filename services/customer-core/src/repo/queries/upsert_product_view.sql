insert into product_views (customer_id, product_id, category, views, last_viewed_at)
values ($1, $2, $3, 1, $4)
on conflict (customer_id, product_id) do update
set views = product_views.views + 1,
    category = coalesce(excluded.category, product_views.category),
    last_viewed_at = excluded.last_viewed_at

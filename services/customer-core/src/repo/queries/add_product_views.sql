insert into product_views (customer_id, product_id, category, views, last_viewed_at)
select $1, product_id, category, views, last_viewed_at
from product_views
where customer_id = $2
on conflict (customer_id, product_id) do update
set views = product_views.views + excluded.views,
    category = coalesce(product_views.category, excluded.category),
    last_viewed_at = case when excluded.last_viewed_at > product_views.last_viewed_at then
    excluded.last_viewed_at else product_views.last_viewed_at end

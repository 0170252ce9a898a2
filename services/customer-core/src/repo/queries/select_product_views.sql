select product_id, category, views, last_viewed_at
from product_views
where customer_id = $1
order by product_id

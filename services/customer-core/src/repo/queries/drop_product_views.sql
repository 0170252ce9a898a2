delete
from product_views
where customer_id = $1

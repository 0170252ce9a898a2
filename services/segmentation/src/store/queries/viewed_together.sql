-- $1 = the customer, $2 = how many anchors (their most recent views).
select mine.product_id, mine.last_at_us, other.product_id, count(*)
from (
    select product_id, last_at_us
    from product_views
    where customer_id = $1
    order by last_at_us desc, product_id
    limit $2
) mine
join product_views hit on hit.product_id = mine.product_id and hit.customer_id <> $1
join product_views other on other.customer_id = hit.customer_id
    and other.product_id <> hit.product_id
group by mine.product_id, mine.last_at_us, other.product_id

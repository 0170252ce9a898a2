-- $1 = the customer, $2 = how many anchors (their most recent purchases).
select mine.product_id, mine.at_us, other.product_id, count(*)
from (
    select product_id, max(at_us) as at_us
    from purchases
    where customer_id = $1
    group by product_id
    order by max(at_us) desc, product_id
    limit $2
) mine
join purchases hit on hit.product_id = mine.product_id
join purchases other on other.customer_id = hit.customer_id
    and other.order_id = hit.order_id and other.product_id <> hit.product_id
group by mine.product_id, mine.at_us, other.product_id

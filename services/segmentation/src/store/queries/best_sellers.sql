-- $1 = a category (null: every product), $2 = how many.
select p.product_id, cast(sum(p.quantity) as bigint) as sold
from purchases p
left join products pr on pr.product_id = p.product_id
where ($1 is null or pr.category = $1)
group by p.product_id
order by sold desc, p.product_id
limit $2

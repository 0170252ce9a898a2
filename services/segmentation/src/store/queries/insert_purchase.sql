insert into purchases (customer_id, order_id, product_id, quantity, at_us)
values ($1, $2, $3, $4, $5)
on conflict (customer_id, order_id, product_id)
do update set quantity = purchases.quantity + excluded.quantity

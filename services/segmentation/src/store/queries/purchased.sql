select distinct product_id from purchases where customer_id = $1

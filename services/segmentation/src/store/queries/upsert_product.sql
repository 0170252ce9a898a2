insert into products (product_id, category) values ($1, $2)
on conflict (product_id) do update set category = excluded.category

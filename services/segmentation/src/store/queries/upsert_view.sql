-- A view counts once; the latest time stays (a case, since PostgreSQL says greatest and
-- SQLite max).
insert into product_views (customer_id, product_id, views, last_at_us)
values ($1, $2, 1, $3)
on conflict (customer_id, product_id) do update set
    views = product_views.views + 1,
    last_at_us = case when excluded.last_at_us > product_views.last_at_us
        then excluded.last_at_us else product_views.last_at_us end

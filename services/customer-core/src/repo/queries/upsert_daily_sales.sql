insert into daily_sales (day, segment, currency, orders, revenue)
values ($1, $2, $3, 1, $4)
on conflict (day, segment, currency) do update
set orders = daily_sales.orders + 1, revenue = daily_sales.revenue + excluded.revenue

insert into daily_sales (day, segment, currency, orders, revenue)
values ($1, $2, $3, $4, $5)
on conflict (day, segment, currency) do update
set orders = daily_sales.orders + excluded.orders,
    revenue = daily_sales.revenue + excluded.revenue

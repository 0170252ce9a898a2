select day, segment, currency, orders, revenue
from daily_sales
where day >= $1 and day <= $2
order by day, segment, currency

select 1
from customers
where id = $1

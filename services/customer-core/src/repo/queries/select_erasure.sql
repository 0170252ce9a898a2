select erased_by, request_id, erased_at
from erasures
where customer_id = $1

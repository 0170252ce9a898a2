insert into erasures (customer_id, erased_by, request_id, erased_at)
values ($1, $2, $3, $4)

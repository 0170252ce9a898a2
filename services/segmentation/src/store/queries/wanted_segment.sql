-- The segment the rules of `SegmentConfig::decide` give, as one expression: $1 = now in
-- microseconds, $2 the VIP threshold, $3 churn days, $4 at-risk days, $5 new-customer days.
-- Days as the domain counts them: whole days, never negative.
case
    when lifetime_value >= $2 then 'vip'
    when (case when $1 < coalesce(last_order_at_us, created_at_us) then 0
          else ($1 - coalesce(last_order_at_us, created_at_us)) / 86400000000 end) > $3
        then 'churned'
    when (case when $1 < coalesce(last_order_at_us, created_at_us) then 0
          else ($1 - coalesce(last_order_at_us, created_at_us)) / 86400000000 end) > $4
        then 'at_risk'
    when (case when $1 < created_at_us then 0
          else ($1 - created_at_us) / 86400000000 end) <= $5
        then 'new'
    else 'regular'
end

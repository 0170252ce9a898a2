-- The writer could not tell the cache about these: every replica's next look finds them
-- overdue, without waiting for the grace. Answers whether an invalidation has been overdue
-- for longer than a lease ($2 s) already: then no replica trusts the cache any more and the
-- writer need not wait for leases to run out.
with marked as (
    update cache_invalidations
    set failed_at = coalesce(failed_at, clock_timestamp())
    where customer_id = any($1)
)
select exists (
    select 1 from cache_invalidations
    where failed_at < clock_timestamp() - make_interval(secs => $2)
)

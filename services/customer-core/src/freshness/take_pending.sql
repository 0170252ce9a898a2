-- The oldest invalidations, taken for telling the cache; another replica skips them.
-- Deleted when the caller commits, which it does only once the cache confirmed them.
delete from cache_invalidations
where ctid in (
    select ctid from cache_invalidations
    order by recorded_at
    limit $1
    for update skip locked
)
returning customer_id, version

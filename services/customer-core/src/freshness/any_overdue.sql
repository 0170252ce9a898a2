-- Whether the cache may be serving a version older than the database: an invalidation
-- the writer could not deliver, or one nobody delivered within the grace ($1 s).
select exists (
    select 1 from cache_invalidations
    where failed_at is not null
       or recorded_at < clock_timestamp() - make_interval(secs => $1)
)

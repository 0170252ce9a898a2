-- The oldest recorded invalidations, to tell the cache of. Replicas may take the same
-- ones; telling the cache twice does no harm.
select customer_id, version from cache_invalidations order by recorded_at limit $1

-- Invalidations the cache confirmed: ($1[i], $2[i]) pairs.
delete from cache_invalidations
where (customer_id, version) in (select * from unnest($1::uuid[], $2::bigint[]))

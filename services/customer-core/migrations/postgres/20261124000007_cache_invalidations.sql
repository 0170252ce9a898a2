-- Cache invalidation as part of the committed work: every new version of a customer row
-- records the cache entry it makes stale, in the same transaction as the change. The
-- writer tells the cache after the commit; `crate::freshness` retries what was not
-- confirmed and keeps every replica off the cache while anything is overdue. (SQLite has
-- no such table: the standalone binary's cache is in its own process and is always told.)
create table cache_invalidations (
    customer_id uuid not null,
    version     bigint not null,
    recorded_at timestamptz not null default clock_timestamp(),
    -- When the writer found it could not tell the cache: overdue from then on, not only
    -- after the grace.
    failed_at   timestamptz
);
create index cache_invalidations_age on cache_invalidations (recorded_at);
create index cache_invalidations_customer on cache_invalidations (customer_id, version);

create function record_cache_invalidation() returns trigger language plpgsql as $$
begin
    insert into cache_invalidations (customer_id, version) values (new.id, new.version);
    return null;
end
$$;

create trigger customers_cache_invalidation
    after update on customers
    for each row when (old.version is distinct from new.version)
    execute function record_cache_invalidation();

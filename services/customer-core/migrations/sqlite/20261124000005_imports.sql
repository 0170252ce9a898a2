-- As on PostgreSQL (see there).
create table import_jobs (
    id          blob primary key,
    status      text not null check (status in ('running', 'completed', 'failed')),
    created     integer not null,
    updated     integer not null,
    unchanged   integer not null,
    failed      integer not null,
    errors      text not null,
    reason      text,
    started_at  text not null,
    finished_at text
) strict;

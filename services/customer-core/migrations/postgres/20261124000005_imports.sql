-- Bulk imports: progress and the first errors, readable while the upload runs.
create table import_jobs (
    id          uuid primary key,
    status      text not null check (status in ('running', 'completed', 'failed')),
    created     bigint not null,
    updated     bigint not null,
    unchanged   bigint not null,
    failed      bigint not null,
    errors      jsonb not null,
    reason      text,
    started_at  timestamptz not null,
    finished_at timestamptz
);

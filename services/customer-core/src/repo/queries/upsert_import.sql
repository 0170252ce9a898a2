insert into import_jobs (id, status, created, updated, unchanged, failed, errors, reason,
    started_at, finished_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
on conflict (id) do update
set status = excluded.status, created = excluded.created, updated = excluded.updated,
    unchanged = excluded.unchanged, failed = excluded.failed, errors = excluded.errors,
    reason = excluded.reason, finished_at = excluded.finished_at

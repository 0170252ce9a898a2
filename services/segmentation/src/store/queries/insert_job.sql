insert into recompute_jobs (id, status, phase, total, processed, changed, error,
    started_at_us, heartbeat_us, finished_at_us)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)

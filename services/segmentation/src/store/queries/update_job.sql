update recompute_jobs
set status = $2, phase = $3, total = $4, processed = $5, changed = $6, error = $7,
    heartbeat_us = $8, finished_at_us = $9
where id = $1

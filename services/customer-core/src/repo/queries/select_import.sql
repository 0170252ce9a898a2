select id, status, created, updated, unchanged, failed, errors, reason, started_at,
    finished_at
from import_jobs
where id = $1

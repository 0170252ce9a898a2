-- Marks a running job that stopped beating as failed. $1 = beat before this.
update recompute_jobs
set status = 'failed', error = 'abandoned: its process stopped', phase = 'done',
    finished_at_us = heartbeat_us
where status = 'running' and heartbeat_us < $1

update recompute_jobs set heartbeat_us = $2 where id = $1 and status = 'running'

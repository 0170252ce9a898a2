id, status, phase, total, processed, changed, error, started_at_us, finished_at_us

insert into rfm_bounds (id, bounds) values (1, $1)
on conflict (id) do update set bounds = excluded.bounds

insert into applied_events (id) values ($1) on conflict do nothing

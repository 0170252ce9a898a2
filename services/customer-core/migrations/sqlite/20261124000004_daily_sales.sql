-- As on PostgreSQL (see there); days as YYYY-MM-DD text, which sorts by date.
create table daily_sales (
    day      text not null,
    segment  text not null,
    currency text not null,
    orders   integer not null,
    revenue  real not null,
    primary key (day, segment, currency)
) strict;

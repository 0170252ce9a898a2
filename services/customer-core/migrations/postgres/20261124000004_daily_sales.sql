-- Purchase analytics: completed orders per day (UTC), the customer's segment at the
-- time, and currency.
create table daily_sales (
    day      date not null,
    segment  text not null,
    currency text not null,
    orders   bigint not null,
    revenue  double precision not null,
    primary key (day, segment, currency)
);

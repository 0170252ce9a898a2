-- Erasure (right to be forgotten), duplicate detection and merging.

-- Set when the person was erased; the row stays as a tombstone without personal data.
alter table customers add column erased_at timestamptz;

-- Lower-cased keys that find likely duplicates (see Customer::match_keys). Rows older
-- than this migration get approximate keys until their next change.
alter table customers add column email_key text;
alter table customers add column first_name_key text;
alter table customers add column last_name_key text;
update customers set email_key = email, first_name_key = lower(first_name),
    last_name_key = lower(last_name);
create index customers_email_key on customers (email_key) where status <> 'deleted';
create index customers_phone on customers (phone) where status <> 'deleted';
create index customers_first_name_key on customers (first_name_key) where status <> 'deleted';
create index customers_last_name_key on customers (last_name_key) where status <> 'deleted';
create index customers_merged_into on customers (merged_into) where merged_into is not null;

-- Who erased whom and when; nothing of the erased data.
create table erasures (
    customer_id uuid primary key references customers (id),
    erased_by   text not null,
    request_id  text,
    erased_at   timestamptz not null
);

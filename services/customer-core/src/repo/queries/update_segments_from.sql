-- The start of a segment update: its VALUES list (id, segment, version, updated_at)
-- and update_segments_where follow.
update customers
set segment = v.column2, version = v.column3, updated_at = v.column4
from (

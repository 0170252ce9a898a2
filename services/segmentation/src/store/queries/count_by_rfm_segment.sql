select rfm_segment, count(*)
from profiles
where not deleted and rfm_segment is not null
group by rfm_segment

select segment, count(*) from profiles where not deleted group by segment

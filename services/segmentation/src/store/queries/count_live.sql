select count(*) from profiles where not deleted

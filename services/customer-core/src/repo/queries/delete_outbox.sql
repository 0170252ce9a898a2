delete
from outbox
where seq = $1

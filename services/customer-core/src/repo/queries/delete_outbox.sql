-- The relayed rows' seqs and the closing parenthesis follow.
delete
from outbox
where seq in (

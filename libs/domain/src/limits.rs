//! The platform's business limits: how much one request may ask for or carry. Every
//! service that checks one (and the gateway that documents it) reads it from here, so a
//! limit changes in one place. A customer's own limits (tags, name lengths) sit beside
//! the rule that applies them.

/// Events in one ingest request (REST batch or gRPC stream chunk).
pub const MAX_EVENTS_PER_REQUEST: usize = 1_000;
/// Items in one page of a list or search.
pub const MAX_PAGE_SIZE: u32 = 100;
/// How deep paging through search results may go (offset + limit).
pub const MAX_SEARCH_WINDOW: u32 = 10_000;
/// Characters in a search's text.
pub const MAX_SEARCH_QUERY_CHARS: usize = 200;
/// Tags a search may filter on.
pub const MAX_SEARCH_TAGS: usize = 20;
/// Products one recommendation answer lists.
pub const MAX_RECOMMENDATIONS: u32 = 10;
/// Support tickets the 360 view shows (open ones first).
pub const MAX_TICKETS_SHOWN: u32 = 50;
/// Possible duplicates one request lists.
pub const MAX_DUPLICATES: u32 = 50;
/// Days one sales report may span.
pub const MAX_SALES_DAYS: i64 = 366;
/// Row errors an import keeps (the first, by line).
pub const MAX_IMPORT_ERRORS: usize = 100;
/// Segment changes one store request carries at most (customer-core refuses more,
/// segmentation sends them in pages of this size).
pub const MAX_SEGMENT_CHANGES: usize = 1_000;

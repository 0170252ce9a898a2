//! The CRM's pure domain: customers, their events and the rules that keep them valid.
//! Nothing here does I/O; time comes in as a `now` argument so tests pin every boundary.

pub mod activity;
pub mod country;
pub mod currency;
pub mod customer;
pub mod customer_input;
pub mod duplicates;
pub mod email;
pub mod event;
pub mod event_validation;
pub mod job;
pub mod language;
pub mod limits;
pub mod merge;
pub mod milestone;
pub mod name;
pub mod notification;
pub mod phone;
pub mod rfm;
pub mod segmentation;
pub mod tag;
pub mod validation;
mod value;

pub use activity::{Order, SupportTicket, TimelineEntry};
pub use country::CountryCode;
pub use currency::Currency;
pub use customer::{
    Address, AddressKind, Customer, CustomerId, CustomerMetrics, CustomerStatus, Preferences,
    Segment, stored_precision,
};
pub use customer_input::{AddressDraft, CustomerDraft, CustomerPatch, PreferencesPatch};
pub use email::Email;
pub use event::{CustomerEvent, CustomerEventType, OrderFacts, TicketFacts};
pub use event_validation::EventDraft;
pub use job::{ItemFailure, Job, JobKind, JobProgress, JobStatus};
pub use language::Language;
pub use name::PersonName;
pub use phone::Phone;
pub use tag::Tag;
pub use validation::{FieldError, ValidationErrors};

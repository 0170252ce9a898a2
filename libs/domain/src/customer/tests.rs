use chrono::TimeZone;

use super::*;
use crate::{AddressDraft, PreferencesPatch};

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0).unwrap()
}

#[test]
fn wire_names_are_what_serde_writes() {
    CustomerStatus::wire_names_match_serde();
    Segment::wire_names_match_serde();
    AddressKind::wire_names_match_serde();
    crate::CustomerEventType::wire_names_match_serde();
    crate::rfm::RfmSegment::wire_names_match_serde();
}

fn draft() -> CustomerDraft {
    CustomerDraft {
        email: "Ada@Example.com".into(),
        first_name: Some(" Ada ".into()),
        ..CustomerDraft::default()
    }
}

fn fields(errors: ValidationErrors) -> Vec<String> {
    errors.0.into_iter().map(|e| e.field).collect()
}

#[test]
fn a_new_customer_is_active_new_version_one_with_default_preferences() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    assert_eq!(customer.email.as_str(), "ada@example.com");
    assert_eq!(customer.first_name.as_ref().unwrap().as_str(), "Ada");
    assert_eq!(customer.status, CustomerStatus::Active);
    assert_eq!(customer.segment, Segment::New);
    assert_eq!(customer.version, 1);
    assert_eq!(customer.preferences, Preferences::default());
    assert_eq!(
        (customer.created_at, customer.last_activity_at),
        (at(9), at(9))
    );
    assert_eq!(customer.metrics.first_order_date, None);
}

#[test]
fn every_bad_field_is_reported_at_once() {
    let bad = CustomerDraft {
        email: "nope".into(),
        phone: Some("12".into()),
        last_name: Some("x".repeat(101)),
        addresses: vec![AddressDraft {
            line1: " ".into(),
            city: "Paris".into(),
            country: "FRA".into(),
            ..AddressDraft::default()
        }],
        preferences: PreferencesPatch {
            currency: Some("EURO".into()),
            ..PreferencesPatch::default()
        },
        ..draft()
    };
    let errors = Customer::create(CustomerId::generate(), bad, at(9)).unwrap_err();
    assert_eq!(
        fields(errors),
        [
            "email",
            "phone",
            "last_name",
            "addresses[0].line1",
            "addresses[0].country",
            "preferences.currency"
        ]
    );
}

#[test]
fn blank_optional_text_means_none() {
    let blank = CustomerDraft {
        phone: Some("  ".into()),
        ..draft()
    };
    let customer = Customer::create(CustomerId::generate(), blank, at(9)).unwrap();
    assert_eq!(customer.phone, None);
}

#[test]
fn addresses_are_limited_and_one_default_per_kind() {
    let address = AddressDraft {
        line1: "1 Main St".into(),
        city: "Hampton".into(),
        country: "us".into(),
        is_default: true,
        ..AddressDraft::default()
    };
    let two_defaults = CustomerDraft {
        addresses: vec![address.clone(); 2],
        ..draft()
    };
    let errors = Customer::create(CustomerId::generate(), two_defaults, at(9)).unwrap_err();
    assert_eq!(fields(errors), ["addresses"]);

    let too_many = CustomerDraft {
        addresses: vec![
            AddressDraft {
                is_default: false,
                ..address
            };
            MAX_ADDRESSES + 1
        ],
        ..draft()
    };
    let errors = Customer::create(CustomerId::generate(), too_many, at(9)).unwrap_err();
    assert_eq!(fields(errors), ["addresses"]);
}

#[test]
fn a_patch_changes_only_what_it_names_and_bumps_the_version() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    let patch = CustomerPatch {
        first_name: Some(None),
        tags: Some(vec!["Gold".into()]),
        preferences: Some(PreferencesPatch {
            newsletter: Some(true),
            ..PreferencesPatch::default()
        }),
        ..CustomerPatch::default()
    };
    let patched = customer.patched(&patch, at(10)).unwrap();
    assert_eq!(patched.first_name, None);
    assert_eq!(patched.tags, [Tag::parse("gold").unwrap()]);
    assert!(patched.preferences.newsletter);
    assert_eq!(patched.preferences.language, customer.preferences.language);
    assert_eq!(patched.email, customer.email);
    assert_eq!((patched.version, patched.updated_at), (2, at(10)));
    assert_eq!(patched.created_at, customer.created_at);
}

#[test]
fn a_patch_that_changes_nothing_keeps_the_version() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    let same = CustomerPatch {
        email: Some("ADA@example.com".into()),
        ..Default::default()
    };
    assert_eq!(customer.patched(&same, at(10)).unwrap(), customer);
}

#[test]
fn a_patch_cannot_delete_and_a_bad_patch_changes_nothing() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    let delete = CustomerPatch {
        status: Some(CustomerStatus::Deleted),
        ..Default::default()
    };
    assert_eq!(
        fields(customer.patched(&delete, at(10)).unwrap_err()),
        ["status"]
    );
    let half_bad = CustomerPatch {
        last_name: Some(Some("Lovelace".into())),
        email: Some("broken".into()),
        ..Default::default()
    };
    assert_eq!(
        fields(customer.patched(&half_bad, at(10)).unwrap_err()),
        ["email"]
    );
}

#[test]
fn deleting_keeps_the_record_one_version_later() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    let deleted = customer.deleted(at(11));
    assert!(deleted.is_deleted());
    assert_eq!((deleted.version, deleted.updated_at), (2, at(11)));
    assert_eq!(deleted.email, customer.email);
}

#[test]
fn full_name_joins_what_is_there() {
    let mut customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    assert_eq!(customer.full_name().as_deref(), Some("Ada"));
    customer.last_name = Some(PersonName::parse("Lovelace").unwrap());
    assert_eq!(customer.full_name().as_deref(), Some("Ada Lovelace"));
    customer.first_name = None;
    customer.last_name = None;
    assert_eq!(customer.full_name(), None);
}

#[test]
fn completed_orders_update_the_seed_metrics() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    let one = customer.after_activity(at(11), Some(30.0), at(12));
    let two = one.after_activity(at(10), Some(60.0), at(12));
    let m = &two.metrics;
    assert_eq!(
        (m.total_orders, m.total_spent, m.average_order),
        (2, 90.0, 45.0)
    );
    assert_eq!(
        (m.first_order_date, m.last_order_date),
        (Some(at(10)), Some(at(11)))
    );
    assert_eq!(m.lifetime_value, 90.0);
    assert_eq!(
        two.last_activity_at,
        at(11),
        "an older event does not move activity back"
    );
    assert_eq!(two.version, 3);
}

#[test]
fn old_activity_without_an_order_changes_nothing() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    assert_eq!(customer.after_activity(at(8), None, at(12)), customer);
}

#[test]
fn timestamps_keep_microseconds() {
    let precise = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
    let customer = Customer::create(CustomerId::generate(), draft(), precise).unwrap();
    assert_eq!(customer.created_at.timestamp_subsec_nanos(), 123_456_000);
}

#[test]
fn json_uses_the_seed_field_names() {
    let customer = Customer::create(CustomerId::generate(), draft(), at(9)).unwrap();
    let json = serde_json::to_value(&customer).unwrap();
    for field in ["first_name", "last_name", "last_activity_at", "created_at"] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert_eq!(json["metrics"]["total_orders"], 0);
    assert_eq!(json["segment"], "new");
    let back: Customer = serde_json::from_value(json).unwrap();
    assert_eq!(back, customer);
}

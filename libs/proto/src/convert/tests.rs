use chrono::Utc;
use crm_domain::{
    AddressDraft, Customer, CustomerDraft, CustomerId, CustomerPatch, CustomerStatus,
    PreferencesPatch,
};

use super::*;

fn customer() -> Customer {
    let draft = CustomerDraft {
        email: "ada@example.com".into(),
        phone: Some("+442079460958".into()),
        first_name: Some("Ada".into()),
        tags: vec!["vip".into()],
        addresses: vec![AddressDraft {
            kind: Some(domain::AddressKind::Billing),
            line1: "12 St James's Square".into(),
            city: "London".into(),
            postal_code: Some("SW1Y 4LB".into()),
            country: "GB".into(),
            is_default: true,
            ..AddressDraft::default()
        }],
        preferences: PreferencesPatch {
            language: Some("en-GB".into()),
            categories: Some(vec!["books".into()]),
            ..PreferencesPatch::default()
        },
        ..CustomerDraft::default()
    };
    let mut customer = Customer::create(CustomerId::generate(), draft, Utc::now()).unwrap();
    customer.metrics.nps = Some(9);
    customer.metrics.first_order_date = Some(customer.created_at);
    customer
}

#[test]
fn a_customer_survives_the_wire() {
    let sent = customer();
    let received = Customer::try_from(v1::Customer::from(sent.clone())).unwrap();
    assert_eq!(received, sent);
}

#[test]
fn a_patch_survives_the_wire_including_cleared_fields() {
    let sent = CustomerPatch {
        phone: Some(None),
        last_name: Some(Some("Lovelace".into())),
        status: Some(CustomerStatus::Blocked),
        tags: Some(vec![]),
        ..CustomerPatch::default()
    };
    let received = CustomerPatch::try_from(v1::CustomerPatch::from(sent.clone())).unwrap();
    assert_eq!(received, sent);
}

#[test]
fn clearing_a_required_field_is_refused() {
    let patch = v1::CustomerPatch {
        clear: vec!["email".into()],
        ..Default::default()
    };
    let errors = CustomerPatch::try_from(patch).unwrap_err();
    assert_eq!(errors.0[0].field, "clear");
}

#[test]
fn a_draft_survives_the_wire() {
    let sent = CustomerDraft {
        email: "a@b.co".into(),
        addresses: vec![AddressDraft {
            line1: "x".into(),
            ..AddressDraft::default()
        }],
        ..CustomerDraft::default()
    };
    assert_eq!(
        CustomerDraft::from(v1::CustomerInput::from(sent.clone())),
        sent
    );
}

#[test]
fn a_job_survives_the_wire_and_an_unknown_kind_is_refused() {
    let started = domain::stored_precision(Utc::now());
    for kind in domain::JobKind::ALL {
        let mut job = domain::Job::start(uuid::Uuid::now_v7(), *kind, "reading rows", started);
        job.add("created", 3);
        job.fail_item(4, "email: must be an e-mail address".into());
        job.progress.total = Some(10);
        job.finish(started, Some("the upload broke off".into()));
        let wire = v1::Job::from(job.clone());
        assert_eq!(domain::Job::try_from(wire).unwrap(), job);
    }
    let job = domain::Job::start(uuid::Uuid::nil(), domain::JobKind::Reindex, "x", started);
    let unknown = v1::Job {
        kind: 99,
        ..v1::Job::from(job)
    };
    assert!(domain::Job::try_from(unknown).unwrap_err().contains("kind"));
}

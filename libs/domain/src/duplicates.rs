//! Likely duplicates of a customer: the store finds candidates sharing a match key (the
//! e-mail's mailbox, the phone, the first or the last name); this scores them and says
//! why.

use crate::{Customer, merge::same_place};

/// The columns a store indexes to find candidates (see [`Customer::match_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchKeys {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Why a candidate is a likely duplicate, and how likely (0 to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Likeness {
    pub score: f64,
    /// What matched, e.g. "same e-mail address (ignoring dots and +tags)".
    pub evidence: Vec<String>,
}

/// How strongly each kind of evidence alone suggests the same person.
const SAME_EMAIL: f64 = 0.9;
const SAME_PHONE: f64 = 0.8;
const SAME_NAME_AND_ADDRESS: f64 = 0.7;
const SAME_NAME: f64 = 0.3;
const NEAR_NAME: f64 = 0.25;
/// How many letters may differ in a near-identical name: none in short names, one
/// from 5 letters, two from 9 (as a search's fuzziness AUTO).
fn max_name_edits(name: &str) -> usize {
    match name.chars().count() {
        0..5 => 0,
        5..9 => 1,
        _ => 2,
    }
}

impl Customer {
    /// Lower-cased keys; a merged-away or erased customer still has them, the store
    /// looks only at live customers.
    pub fn match_keys(&self) -> MatchKeys {
        let lower =
            |name: &Option<crate::PersonName>| name.as_ref().map(|n| n.as_str().to_lowercase());
        MatchKeys {
            email: self.email.match_key(),
            first_name: lower(&self.first_name),
            last_name: lower(&self.last_name),
        }
    }

    /// How likely `other` is the same person, or `None` when nothing matches.
    pub fn likeness(&self, other: &Customer) -> Option<Likeness> {
        if self.id == other.id {
            return None;
        }
        let mut evidence = Vec::new();
        let mut found = |weight: f64, reason: String| evidence.push((weight, reason));
        if self.email.match_key() == other.email.match_key() {
            found(
                SAME_EMAIL,
                "same e-mail address (ignoring dots and +tags)".into(),
            );
        }
        if self.phone.is_some() && self.phone == other.phone {
            found(SAME_PHONE, "same phone number".into());
        }
        if let (Some(name), Some(other_name)) = (self.lower_full_name(), other.lower_full_name()) {
            let edits = edit_distance(&name, &other_name);
            let shared_address = self
                .addresses
                .iter()
                .any(|a| other.addresses.iter().any(|b| same_place(a, b)));
            if edits == 0 && shared_address {
                found(SAME_NAME_AND_ADDRESS, "same name and address".into());
            } else if edits == 0 {
                found(SAME_NAME, "same name".into());
            } else if edits <= max_name_edits(&name) {
                let plural = if edits == 1 { "" } else { "s" };
                found(
                    NEAR_NAME,
                    format!("near-identical name ({edits} letter{plural} apart)"),
                );
            }
        }
        if evidence.is_empty() {
            return None;
        }
        // Independent hints: the chance that all of them are coincidences.
        let coincidence: f64 = evidence.iter().map(|(weight, _)| 1.0 - weight).product();
        Some(Likeness {
            score: ((1.0 - coincidence) * 1000.0).round() / 1000.0,
            evidence: evidence.into_iter().map(|(_, reason)| reason).collect(),
        })
    }

    fn lower_full_name(&self) -> Option<String> {
        self.full_name().map(|n| n.to_lowercase())
    }
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{AddressDraft, CustomerDraft, CustomerId};

    fn customer(email: &str, phone: Option<&str>, first: &str, last: &str) -> Customer {
        let draft = CustomerDraft {
            email: email.into(),
            phone: phone.map(Into::into),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            ..Default::default()
        };
        Customer::create(CustomerId::generate(), draft, Utc::now()).unwrap()
    }

    #[test]
    fn the_same_mailbox_and_phone_are_strong_evidence() {
        let a = customer("Jane.Doe@gmail.com", Some("+14155550123"), "Jane", "Doe");
        let b = customer(
            "janedoe+shop@gmail.com",
            Some("+1 415 555 0123"),
            "J",
            "Doe",
        );
        let likeness = a.likeness(&b).unwrap();
        assert_eq!(
            likeness.evidence,
            [
                "same e-mail address (ignoring dots and +tags)",
                "same phone number"
            ]
        );
        assert_eq!(likeness.score, 0.98);
    }

    #[test]
    fn names_count_by_how_close_they_are() {
        let jane = customer("a@example.com", None, "Katherine", "Johnson");
        let typo = customer("b@example.com", None, "Katherin", "Jonson");
        let same = customer("c@example.com", None, "katherine", "JOHNSON");
        let other = customer("d@example.com", None, "Dorothy", "Vaughan");
        assert_eq!(
            jane.likeness(&typo).unwrap().evidence,
            ["near-identical name (2 letters apart)"]
        );
        assert_eq!(jane.likeness(&same).unwrap().evidence, ["same name"]);
        assert_eq!(jane.likeness(&other), None);
        assert_eq!(jane.likeness(&jane), None, "not a duplicate of itself");
        let short = customer("e@example.com", None, "Al", "Li");
        let shorter = customer("f@example.com", None, "Ed", "Li");
        assert_eq!(
            short.likeness(&shorter),
            None,
            "two letters in five are not one typo"
        );
    }

    #[test]
    fn the_same_name_at_the_same_address_outweighs_a_namesake() {
        let at = |email: &str, line1: &str| {
            let draft = CustomerDraft {
                email: email.into(),
                first_name: Some("Ada".into()),
                last_name: Some("Lovelace".into()),
                addresses: vec![AddressDraft {
                    line1: line1.into(),
                    city: "London".into(),
                    country: "GB".into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            Customer::create(CustomerId::generate(), draft, Utc::now()).unwrap()
        };
        let home = at("a@example.com", "12 St James's Square");
        let same = at("b@example.com", "12  st james's square");
        let elsewhere = at("c@example.com", "1 Other Road");
        let likeness = home.likeness(&same).unwrap();
        assert_eq!(likeness.evidence, ["same name and address"]);
        assert!(likeness.score > home.likeness(&elsewhere).unwrap().score);
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("jonson", "johnson"), 1);
        assert_eq!(edit_distance("müller", "muller"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

//! AMQP topic matching: `*` is exactly one word, `#` zero or more, words split by dots.

pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

fn matches(pattern: &[&str], key: &[&str]) -> bool {
    match (pattern.first(), key.first()) {
        (None, None) => true,
        (Some(&"#"), _) => {
            matches(&pattern[1..], key) || (!key.is_empty() && matches(pattern, &key[1..]))
        }
        (Some(&"*"), Some(_)) => matches(&pattern[1..], &key[1..]),
        (Some(word), Some(part)) if word == part => matches(&pattern[1..], &key[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn words_stars_and_hashes() {
        assert!(topic_matches("order.completed", "order.completed"));
        assert!(topic_matches("order.*", "order.completed"));
        assert!(!topic_matches("order.*", "order"));
        assert!(!topic_matches("order.*", "order.completed.late"));
        assert!(topic_matches("order.#", "order"));
        assert!(topic_matches("order.#", "order.completed.late"));
        assert!(topic_matches("#", "customer.created"));
        assert!(topic_matches("*.created", "customer.created"));
        assert!(topic_matches("#.created", "a.b.created"));
        assert!(!topic_matches("customer.*", "order.completed"));
    }
}

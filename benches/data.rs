//! The benchmark's own data, the same every run (a fixed seed): customers with names,
//! e-mails, phones, tags and addresses, their orders and product views, and the
//! misspelled searches people type.

use serde_json::{Value, json};

/// The seed every stream of this module starts from.
const SEED: u64 = 0x5EED_C0DE_2026_1207;

pub const FIRST: [&str; 32] = [
    "Katherine",
    "Dorothy",
    "Mary",
    "Grace",
    "Ada",
    "Margaret",
    "Hedy",
    "Barbara",
    "Frances",
    "Radia",
    "Shafi",
    "Lynn",
    "Evelyn",
    "Annie",
    "Joan",
    "Karen",
    "Sophie",
    "Edith",
    "Jean",
    "Adele",
    "Betty",
    "Ruth",
    "Marlyn",
    "Kathleen",
    "Alan",
    "Edsger",
    "Donald",
    "Niklaus",
    "Dennis",
    "Ken",
    "Bjarne",
    "Guido",
];
pub const LAST: [&str; 32] = [
    "Johnson",
    "Vaughan",
    "Jackson",
    "Hopper",
    "Lovelace",
    "Hamilton",
    "Lamarr",
    "Liskov",
    "Allen",
    "Perlman",
    "Goldwasser",
    "Conway",
    "Boyd",
    "Easley",
    "Clarke",
    "Jones",
    "Wilson",
    "Bartik",
    "Goldberg",
    "Holberton",
    "Meltzer",
    "Teitelbaum",
    "Turing",
    "Dijkstra",
    "Knuth",
    "Wirth",
    "Ritchie",
    "Thompson",
    "Stroustrup",
    "Rossum",
    "Kernighan",
    "Torvalds",
];
const DOMAINS: [&str; 6] = [
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "shop.example",
    "post.example",
];
const TAGS: [&str; 10] = [
    "vip",
    "newsletter",
    "wholesale",
    "b2b",
    "returns",
    "gift",
    "student",
    "staff",
    "eu",
    "us",
];
const CITIES: [(&str, &str, &str); 6] = [
    ("Berlin", "DE", "EUR"),
    ("Paris", "FR", "EUR"),
    ("London", "GB", "GBP"),
    ("New York", "US", "USD"),
    ("Madrid", "ES", "EUR"),
    ("Toronto", "CA", "CAD"),
];
const CATEGORIES: [&str; 8] = [
    "outdoor", "kitchen", "books", "toys", "garden", "sports", "music", "fashion",
];
/// Products in the catalogue; orders and views pick among them.
pub const PRODUCTS: u64 = 2_000;

/// SplitMix64: small, fast and good enough to make data (not keys).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The stream for item `n` of a kind (`stream` tells kinds apart).
    pub fn for_item(stream: u64, n: u64) -> Self {
        let mut rng = Self(SEED ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n);
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const CUSTOMERS: u64 = 1;
const ORDERS: u64 = 2;
const VIEWS: u64 = 3;
const SEARCHES: u64 = 4;

/// Customer `n`'s e-mail address: unique for every `n`.
pub fn email(n: u64) -> String {
    let mut rng = Rng::for_item(CUSTOMERS, n);
    let (first, last) = (rng.pick(&FIRST), rng.pick(&LAST));
    let domain = rng.pick(&DOMAINS);
    format!(
        "{}.{}.{n}@{domain}",
        first.to_lowercase(),
        last.to_lowercase()
    )
}

/// Customer `n` as `POST /api/customers` (and an NDJSON import line) takes it.
pub fn customer(n: u64) -> Value {
    let mut rng = Rng::for_item(CUSTOMERS, n);
    // Picked in `email`'s order, so the names are the ones in the address.
    let (first, last) = (*rng.pick(&FIRST), *rng.pick(&LAST));
    let _domain = rng.pick(&DOMAINS);
    let (city, country, currency) = *rng.pick(&CITIES);
    let tags: Vec<&str> = (0..rng.below(4)).map(|_| *rng.pick(&TAGS)).collect();
    let categories: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&CATEGORIES)).collect();
    json!({
        "email": email(n),
        // Unique too: the digits of `n` after a fixed prefix.
        "phone": format!("+1415{:07}", n % 10_000_000),
        "first_name": first,
        "last_name": last,
        "tags": tags,
        "addresses": [{
            "kind": "shipping",
            "line1": format!("{} Main Street", 1 + rng.below(400)),
            "city": city,
            "postal_code": format!("{:05}", rng.below(100_000)),
            "country": country,
            "is_default": true,
        }],
        "preferences": {
            "language": "en",
            "currency": currency,
            "newsletter": rng.below(2) == 0,
            "categories": categories,
        },
    })
}

/// Order number `n` of `customer_id`, completed, with one to three items.
pub fn order(customer_id: &str, n: u64) -> Value {
    let mut rng = Rng::for_item(ORDERS, n);
    let items: Vec<Value> = (0..1 + rng.below(3))
        .map(|_| {
            json!({
                "product_id": format!("p-{}", rng.below(PRODUCTS)),
                "category": rng.pick(&CATEGORIES),
                "quantity": 1 + rng.below(3),
                "price": 5.0 + rng.below(20_000) as f64 / 100.0,
            })
        })
        .collect();
    let total: f64 = items
        .iter()
        .map(|i| i["price"].as_f64().unwrap() * i["quantity"].as_f64().unwrap())
        .sum();
    json!({
        "type": "order.completed",
        "customer_id": customer_id,
        "data": { "order_id": format!("o-{n}"), "total": (total * 100.0).round() / 100.0,
                  "currency": "EUR", "items": items },
    })
}

/// Product view number `n` of `customer_id`.
pub fn view(customer_id: &str, n: u64) -> Value {
    let mut rng = Rng::for_item(VIEWS, n);
    json!({
        "type": "product.viewed",
        "customer_id": customer_id,
        "data": { "product_id": format!("p-{}", rng.below(PRODUCTS)),
                  "category": rng.pick(&CATEGORIES) },
    })
}

/// Search number `n` of a base of `customers`: a customer's last name with one letter
/// dropped, their e-mail's local part, or their phone's last digits.
pub fn search(n: u64, customers: u64) -> Value {
    let mut rng = Rng::for_item(SEARCHES, n);
    let wanted = rng.below(customers);
    let person = customer(wanted);
    let query = match rng.below(3) {
        0 => {
            let name = person["last_name"].as_str().unwrap();
            let drop = 1 + rng.below(name.len() as u64 - 2) as usize;
            format!("{}{}", &name[..drop], &name[drop + 1..])
        }
        1 => email(wanted).split('@').next().unwrap().to_owned(),
        _ => person["phone"].as_str().unwrap()[8..].to_owned(),
    };
    json!({ "query": query, "limit": 10 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_data_and_emails_are_unique() {
        assert_eq!(customer(7), customer(7));
        assert_ne!(customer(7), customer(8));
        let emails: std::collections::BTreeSet<String> = (0..10_000).map(email).collect();
        assert_eq!(emails.len(), 10_000);
        assert_eq!(order("c", 3), order("c", 3));
        assert!(search(1, 100)["query"].as_str().unwrap().len() >= 3);
    }
}

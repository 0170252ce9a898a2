//! `google.protobuf.Struct` ↔ JSON, for the free-form `data` of events.

use prost_types::{ListValue, Struct, Value as ProtoValue, value::Kind};
use serde_json::{Map, Number, Value};

pub fn struct_to_json(object: Struct) -> Value {
    Value::Object(
        object
            .fields
            .into_iter()
            .map(|(k, v)| (k, value_to_json(v)))
            .collect(),
    )
}

pub fn json_to_struct(object: Map<String, Value>) -> Struct {
    Struct {
        fields: object
            .into_iter()
            .map(|(k, v)| (k, json_to_value(v)))
            .collect(),
    }
}

fn value_to_json(value: ProtoValue) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        // Struct numbers are doubles; whole ones become JSON integers again.
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(n as i64),
        Some(Kind::NumberValue(n)) => Number::from_f64(n).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(object)) => struct_to_json(object),
    }
}

fn json_to_value(value: Value) -> ProtoValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        Value::Object(object) => Kind::StructValue(json_to_struct(object)),
    };
    ProtoValue { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_survives_a_struct() {
        let json = serde_json::json!({
            "order_id": "o-1", "total": 30.5, "count": 2, "paid": true, "note": null,
            "items": [{ "product_id": "p", "quantity": 1 }], "nested": { "deep": [1, "x"] }
        });
        let Value::Object(object) = json.clone() else {
            unreachable!()
        };
        assert_eq!(struct_to_json(json_to_struct(object)), json);
    }
}

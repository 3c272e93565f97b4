//! The order intake request: from untrusted JSON to a validated [`OrderRequest`], or the list of
//! every field that is wrong, each with a stable code. What the server knows the client never
//! says: the customer comes from the token (a shop backend acting for customers excepted), the
//! prices from the catalogue ([`super::catalogue::price_lines`] turns a request into an
//! [`OrderDraft`]), the tier from the customer's profile.

use super::address::{Address, RawAddress};
use super::order::{OrderLine, PaymentMethod};
use super::values::{ChannelId, CourierId, Currency, CustomerId, DeviceId, Invalid, Money, Phone, Quantity, Sku};
use serde_json::{Map, Value};
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};

/// One problem with one field of a request. `field` is a JSON path (`lines[2].quantity`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, invalid: Invalid) -> Self {
        Self { field: field.into(), code: invalid.code, detail: invalid.detail }
    }
}

/// Bounds on what one order may contain.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// At most this many lines; a reservation writes one stock item per line plus two, inside
    /// DynamoDB's 100-item transaction limit.
    pub max_lines: usize,
    /// How far ahead of our clock a channel's event time may be.
    pub max_clock_skew: Duration,
    pub max_note_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_lines: 50, max_clock_skew: Duration::minutes(5), max_note_chars: 500 }
    }
}

/// A line as asked for: what and how many, and the unit price the client showed, if it sends one
/// (it must then be the current price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLine {
    pub sku: Sku,
    pub quantity: Quantity,
    pub expected_unit_price_minor: Option<i64>,
}

/// A valid order request, not yet priced.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRequest {
    pub customer_id: CustomerId,
    pub lines: Vec<RequestedLine>,
    pub currency: Currency,
    pub shipping_address: Address,
    pub phone: Phone,
    pub payment_method: PaymentMethod,
    pub channel: ChannelId,
    pub device_id: DeviceId,
    pub customer_note: Option<String>,
    pub event_time: OffsetDateTime,
    /// The shop's or provider's fingerprint of the payment card, when known at checkout.
    pub card_fingerprint: Option<String>,
    /// The courier the customer chose, if the shop offers a choice.
    pub preferred_courier: Option<CourierId>,
}

/// A valid, priced order as the customer asked for it, before it has an id or a status.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderDraft {
    pub customer_id: CustomerId,
    pub lines: Vec<OrderLine>,
    pub currency: Currency,
    pub total: Money,
    pub shipping_address: Address,
    pub phone: Phone,
    pub payment_method: PaymentMethod,
    pub channel: ChannelId,
    pub device_id: DeviceId,
    pub customer_note: Option<String>,
    pub event_time: OffsetDateTime,
    pub card_fingerprint: Option<String>,
    pub preferred_courier: Option<CourierId>,
}

impl OrderRequest {
    /// The request with its lines priced (from the catalogue) and its total.
    pub fn priced(self, lines: Vec<OrderLine>, total: Money) -> OrderDraft {
        OrderDraft {
            customer_id: self.customer_id,
            lines,
            currency: self.currency,
            total,
            shipping_address: self.shipping_address,
            phone: self.phone,
            payment_method: self.payment_method,
            channel: self.channel,
            device_id: self.device_id,
            customer_note: self.customer_note,
            preferred_courier: self.preferred_courier,
            event_time: self.event_time,
            card_fingerprint: self.card_fingerprint,
        }
    }
}

struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
    errors: &'a mut Vec<FieldError>,
}

impl<'a> Fields<'a> {
    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn fail(&mut self, name: &str, invalid: Invalid) {
        let path = self.path(name);
        self.errors.push(FieldError::new(path, invalid));
    }

    fn missing(&mut self, name: &str) {
        self.fail(name, Invalid::new("field-missing", format!("{name} is required")));
    }

    fn wrong_type(&mut self, name: &str, expected: &str) {
        self.fail(name, Invalid::new("field-type", format!("{name} must be {expected}")));
    }

    fn string(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.missing(name);
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.wrong_type(name, "a string");
                None
            }
        }
    }

    fn optional_string(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.wrong_type(name, "a string");
                None
            }
        }
    }

    fn integer(&mut self, name: &str) -> Option<i64> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.missing(name);
                None
            }
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Some(v),
                None => {
                    self.wrong_type(name, "a whole number");
                    None
                }
            },
            Some(_) => {
                self.wrong_type(name, "a whole number");
                None
            }
        }
    }

    fn parsed<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, Invalid>) -> Option<T> {
        let raw = self.string(name)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(name, e);
                None
            }
        }
    }
}

/// What a client might try to tell intake that only the server knows: the tier comes from the
/// customer's profile, the total and risk from intake, the status from the order's life. Refused
/// by name rather than ignored, so a client relying on one learns at once it has no effect.
const SERVER_OWNED_FIELDS: [&str; 5] = ["customer_tier", "total_minor", "risk_score", "status", "disposition"];

/// Validate an order request body. `token_customer` is the customer the bearer token names:
/// then the body must not name one; without it (a shop backend acting for customers) the body
/// must. Returns every problem found, not just the first, so a client can fix them in one go.
pub fn parse_order_request(
    body: &Value,
    token_customer: Option<&CustomerId>,
    limits: &Limits,
    now: OffsetDateTime,
) -> Result<OrderRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new("", Invalid::new("body-not-object", "the body must be a JSON object"))]);
    };
    let mut f = Fields { object, prefix: String::new(), errors: &mut errors };

    let customer_id = match token_customer {
        Some(customer) => {
            if object.contains_key("customer_id") {
                let detail = "the customer comes from the bearer token, not the body";
                f.fail("customer_id", Invalid::new("customer-id-not-allowed", detail));
            }
            Some(customer.clone())
        }
        None => f.parsed("customer_id", CustomerId::parse),
    };
    for field in SERVER_OWNED_FIELDS.iter().filter(|field| object.contains_key(**field)) {
        let detail =
            format!("{field} is the server's to know (the customer's profile, the catalogue), not the client's to say");
        f.fail(field, Invalid::new("field-server-owned", detail));
    }
    let currency = f.parsed("currency", Currency::parse);
    let phone = f.parsed("phone", Phone::parse);
    let channel = f.parsed("channel", ChannelId::parse);
    let device_id = f.parsed("device_id", DeviceId::parse);
    let payment_method = f.parsed("payment_method", |s| match s {
        "online" => Ok(PaymentMethod::Online),
        "cash_on_delivery" => Ok(PaymentMethod::CashOnDelivery),
        _ => Err(Invalid::new("payment-method-unknown", "payment_method must be online or cash_on_delivery")),
    });
    let event_time = f.parsed("event_time", |s| {
        let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| Invalid::new("event-time-malformed", "event_time must be an RFC 3339 timestamp"))?;
        if t > now + limits.max_clock_skew {
            return Err(Invalid::new("event-time-in-future", "event_time is in the future"));
        }
        Ok(t)
    });
    let customer_note = match f.optional_string("customer_note") {
        Some(note) if note.chars().count() > limits.max_note_chars => {
            f.fail(
                "customer_note",
                Invalid::new("note-too-long", format!("at most {} characters", limits.max_note_chars)),
            );
            None
        }
        Some(note) if !note.trim().is_empty() => Some(note.trim().to_owned()),
        _ => None,
    };

    let card_fingerprint = match f.optional_string("payment_card_fingerprint") {
        None => None,
        Some(c)
            if !c.is_empty()
                && c.len() <= 128
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b)) =>
        {
            Some(c.to_owned())
        }
        Some(_) => {
            f.fail(
                "payment_card_fingerprint",
                Invalid::new("card-fingerprint-malformed", "a token of up to 128 characters"),
            );
            None
        }
    };
    let preferred_courier = f.optional_string("preferred_courier").and_then(|c| match CourierId::parse(c) {
        Ok(id) => Some(id),
        Err(invalid) => {
            f.fail("preferred_courier", invalid);
            None
        }
    });
    let shipping_address = match object.get("shipping_address") {
        None | Some(Value::Null) => {
            f.missing("shipping_address");
            None
        }
        Some(value) => match serde_json::from_value::<RawAddress>(value.clone()) {
            Ok(raw) => match Address::parse(&raw) {
                Ok(a) => Some(a),
                Err((sub, invalid)) => {
                    f.fail(&format!("shipping_address.{sub}"), invalid);
                    None
                }
            },
            Err(_) => {
                f.wrong_type("shipping_address", "an object of strings");
                None
            }
        },
    };

    let lines = parse_lines(object.get("lines"), limits, &mut errors);

    let (
        Some(customer_id),
        Some(currency),
        Some(phone),
        Some(channel),
        Some(device_id),
        Some(payment_method),
        Some(event_time),
        Some(shipping_address),
        Some(lines),
        true,
    ) = (
        customer_id,
        currency,
        phone,
        channel,
        device_id,
        payment_method,
        event_time,
        shipping_address,
        lines,
        errors.is_empty(),
    )
    else {
        // Every missing part has pushed its error above.
        return Err(errors);
    };
    Ok(OrderRequest {
        customer_id,
        lines,
        currency,
        shipping_address,
        phone,
        payment_method,
        channel,
        device_id,
        customer_note,
        event_time,
        card_fingerprint,
        preferred_courier,
    })
}

fn parse_lines(value: Option<&Value>, limits: &Limits, errors: &mut Vec<FieldError>) -> Option<Vec<RequestedLine>> {
    let items = match value {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("lines", Invalid::new("field-missing", "lines is required")));
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(FieldError::new("lines", Invalid::new("field-type", "lines must be an array")));
            return None;
        }
    };
    if items.is_empty() {
        errors.push(FieldError::new("lines", Invalid::new("lines-empty", "an order needs at least one line")));
        return None;
    }
    if items.len() > limits.max_lines {
        errors.push(FieldError::new(
            "lines",
            Invalid::new("too-many-lines", format!("an order may have at most {} lines", limits.max_lines)),
        ));
        return None;
    }
    let before = errors.len();
    let mut seen = HashSet::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(object) = item.as_object() else {
            errors.push(FieldError::new(format!("lines[{i}]"), Invalid::new("field-type", "a line must be an object")));
            continue;
        };
        let mut f = Fields { object, prefix: format!("lines[{i}]"), errors };
        let sku = f.parsed("sku", Sku::parse);
        let quantity = f.integer("quantity").and_then(|q| match Quantity::new(q) {
            Ok(q) => Some(q),
            Err(e) => {
                f.fail("quantity", e);
                None
            }
        });
        // The price the client showed, if any: checked against the catalogue's when priced.
        let expected = match object.get("unit_price_minor") {
            None | Some(Value::Null) => None,
            Some(_) => f.integer("unit_price_minor").and_then(|p| {
                // The currency is checked elsewhere; the bounds here do not depend on it.
                match Money::new(p, Currency::CNY) {
                    Ok(m) => Some(m.minor),
                    Err(e) => {
                        f.fail("unit_price_minor", e);
                        None
                    }
                }
            }),
        };
        if let Some(sku) = &sku {
            if !seen.insert(sku.clone()) {
                f.fail("sku", Invalid::new("sku-duplicate", "each SKU may appear on one line only"));
            }
        }
        if let (Some(sku), Some(quantity)) = (sku, quantity) {
            lines.push(RequestedLine { sku, quantity, expected_unit_price_minor: expected });
        }
    }
    (errors.len() == before).then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

    fn valid() -> Value {
        json!({
            "customer_id": "cust-42",
            "lines": [
                {"sku": "TEA-GREEN-250", "quantity": 2, "unit_price_minor": 4_900},
                {"sku": "CUP-CERAMIC", "quantity": 1, "unit_price_minor": 2_500}
            ],
            "currency": "CNY",
            "shipping_address": {
                "kind": "street", "recipient": "Li Lei", "country": "CN", "province": "Zhejiang",
                "city": "Hangzhou", "street": "Wensan Road", "house_number": "88"
            },
            "phone": "13800138000",
            "payment_method": "online",
            "channel": "app",
            "device_id": "dev-1",
            "event_time": "2026-11-21T11:59:58Z"
        })
    }

    fn errors_of(body: Value) -> Vec<(String, &'static str)> {
        parse_order_request(&body, None, &Limits::default(), NOW)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    fn with(mut body: Value, pointer: &str, value: Value) -> Value {
        *body.pointer_mut(pointer).unwrap() = value;
        body
    }

    #[test]
    fn a_valid_order_is_accepted_with_the_prices_it_was_shown() {
        let request = parse_order_request(&valid(), None, &Limits::default(), NOW).unwrap();
        assert_eq!(request.lines[0].expected_unit_price_minor, Some(4_900));
        assert_eq!(request.phone.as_str(), "+8613800138000");
        assert_eq!(request.lines.len(), 2);
        let mut unpriced = valid();
        unpriced["lines"][1].as_object_mut().unwrap().remove("unit_price_minor");
        let request = parse_order_request(&unpriced, None, &Limits::default(), NOW).unwrap();
        assert_eq!(request.lines[1].expected_unit_price_minor, None, "a price is optional");
    }

    #[test]
    fn a_customer_token_names_the_customer_and_the_body_may_not() {
        let me = CustomerId::parse("cust-7").unwrap();
        let mut body = valid();
        body.as_object_mut().unwrap().remove("customer_id");
        let request = parse_order_request(&body, Some(&me), &Limits::default(), NOW).unwrap();
        assert_eq!(request.customer_id, me);
        let errors = parse_order_request(&valid(), Some(&me), &Limits::default(), NOW).unwrap_err();
        assert_eq!((errors[0].field.as_str(), errors[0].code), ("customer_id", "customer-id-not-allowed"));
        assert_eq!(errors_of(body), vec![("customer_id".to_owned(), "field-missing")], "a shop backend must name one");
    }

    #[test]
    fn a_tier_or_total_in_the_body_is_refused_by_name() {
        let mut body = valid();
        body["customer_tier"] = json!("L9");
        body["total_minor"] = json!(1);
        assert_eq!(
            errors_of(body),
            vec![("customer_tier".to_owned(), "field-server-owned"), ("total_minor".to_owned(), "field-server-owned")]
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let mut body = valid();
        body.as_object_mut().unwrap().remove("phone");
        assert_eq!(errors_of(body), vec![("phone".to_owned(), "field-missing")]);
    }

    #[test]
    fn a_malformed_phone_is_named() {
        assert_eq!(errors_of(with(valid(), "/phone", json!("12345"))), vec![("phone".to_owned(), "phone-malformed")]);
    }

    #[test]
    fn zero_and_huge_quantities_are_refused_on_their_line() {
        let body = with(valid(), "/lines/1/quantity", json!(0));
        assert_eq!(errors_of(body), vec![("lines[1].quantity".to_owned(), "quantity-not-positive")]);
        let body = with(valid(), "/lines/0/quantity", json!(5000));
        assert_eq!(errors_of(body), vec![("lines[0].quantity".to_owned(), "quantity-too-large")]);
        let body = with(valid(), "/lines/0/quantity", json!(1.5));
        assert_eq!(errors_of(body), vec![("lines[0].quantity".to_owned(), "field-type")]);
    }

    #[test]
    fn duplicate_skus_are_refused() {
        let body = with(valid(), "/lines/1/sku", json!("TEA-GREEN-250"));
        assert_eq!(errors_of(body), vec![("lines[1].sku".to_owned(), "sku-duplicate")]);
    }

    #[test]
    fn too_many_lines_are_refused() {
        let lines: Vec<Value> =
            (0..51).map(|i| json!({"sku": format!("SKU-{i}"), "quantity": 1, "unit_price_minor": 1})).collect();
        assert_eq!(errors_of(with(valid(), "/lines", json!(lines))), vec![("lines".to_owned(), "too-many-lines")]);
        assert_eq!(errors_of(with(valid(), "/lines", json!([]))), vec![("lines".to_owned(), "lines-empty")]);
    }

    #[test]
    fn unknown_currency_is_refused() {
        assert_eq!(
            errors_of(with(valid(), "/currency", json!("DOGE"))),
            vec![("currency".to_owned(), "currency-unknown")]
        );
    }

    #[test]
    fn vague_address_names_the_sub_field() {
        let body = with(valid(), "/shipping_address/house_number", Value::Null);
        assert_eq!(errors_of(body), vec![("shipping_address.house_number".to_owned(), "address-vague")]);
    }

    #[test]
    fn an_event_time_from_the_future_is_refused() {
        let body = with(valid(), "/event_time", json!("2026-11-21T12:30:00Z"));
        assert_eq!(errors_of(body), vec![("event_time".to_owned(), "event-time-in-future")]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let body = with(with(valid(), "/phone", json!(42)), "/payment_method", json!("barter"));
        assert_eq!(
            errors_of(body),
            vec![("phone".to_owned(), "field-type"), ("payment_method".to_owned(), "payment-method-unknown")]
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        assert_eq!(errors_of(json!([1, 2])), vec![("".to_owned(), "body-not-object")]);
    }
}

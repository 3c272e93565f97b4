//! A parcel's address in the clear for those who put it on its way, and nobody else: the
//! warehouse reads it on a shipment until the parcel leaves (customer service the city and a
//! masked phone), the courier's booking carries it for the label, a return's booking for the
//! collection; none of them carries the client's IP.

use orderflow_tests::after_sales::{delivered, open, owner, request, risk_staff, staff_post};
use orderflow_tests::fixtures::{claims, one_warehouse, warehouse_staff};
use orderflow_tests::parcels::customer_service;
use orderflow_tests::warehouse::{self, paid_with_shipments, post, shipments, upload_photo};
use orderflow_tests::Stack;
use serde_json::{json, Value};

/// The client's IP of every test order (the request's source IP): sealed, never shown here.
const CLIENT_IP: &str = "198.51.100.23";

/// The address `order_body` sends, as a parcel's address shows it.
fn test_order_address() -> Value {
    json!({
        "recipient": "Li Lei", "phone": "+8613800138000", "street": "Wensan Road", "house_number": "88",
        "kind": "street", "country": "CN", "province": "Zhejiang", "city": "Hangzhou"
    })
}

async fn shipment_as(stack: &Stack, who: &orderflow_tests::auth::VerifiedClaims, shipment: &str) -> Value {
    let path = format!("/admin/shipments/{shipment}");
    let (status, body) = warehouse::call(stack, who, "GET", &path, "/admin/shipments/{id}", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn the_warehouse_reads_a_parcels_address_until_it_leaves_and_the_courier_gets_it_for_the_label() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    let id = paid_with_shipments(&stack, &[("TEA", 1)]).await;
    let order = stack.store().order(id).await.unwrap().unwrap();
    let context = orderflow::personal::order_context(id);
    let sealer = stack.sealer_for("test");
    let sealed_ip = sealer.open_field(order.personal.as_ref().unwrap(), &context, "client_ip").await.unwrap();
    assert_eq!(sealed_ip.as_deref(), Some(CLIENT_IP), "the order has an IP that could leak");
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();

    // Waiting for a wave, the warehouse sees what customer service sees; in the wave, the label's
    // address.
    let waiting = shipment_as(&stack, &warehouse_staff(), &shipment).await;
    assert_eq!(waiting["status"], "PENDING");
    assert!(waiting.get("deliver_to").is_none(), "{waiting}");
    let wave = warehouse::wave(&stack).await;
    let packing = shipment_as(&stack, &warehouse_staff(), &shipment).await;
    assert_eq!((packing["status"].as_str(), &packing["deliver_to"]), (Some("PICKING"), &test_order_address()));
    assert!(!packing.to_string().contains(CLIENT_IP), "{packing}");
    // Operations and customer service ask with a reason if they need more.
    let operations = claims(&[("sub", "ops-olga"), ("groups", "[operations]")]);
    for who in [operations, customer_service()] {
        let seen = shipment_as(&stack, &who, &shipment).await;
        assert!(seen.get("deliver_to").is_none(), "{seen}");
        assert_eq!(
            (seen["ship_to"]["city"].as_str(), seen["phone_hint"].as_str()),
            (Some("Hangzhou"), Some("**********8000"))
        );
        for clear in ["13800138000", "Li Lei", "Wensan Road", CLIENT_IP] {
            assert!(!seen.to_string().contains(clear), "{clear} shown: {seen}");
        }
    }

    assert_eq!(warehouse::scan(&stack, &wave, &shipment, "TEA", 1).await.0, 200);
    for step in ["pack", "label"] {
        assert_eq!(post(&stack, &warehouse_staff(), &shipment, step, None).await.0, 200, "{step}");
    }
    upload_photo(&stack, &shipment, 4096).await;
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "hand-over", None).await.0, 200);
    let (booking, _) =
        stack.courier.bookings().into_iter().find(|(b, _)| b.shipment_id.to_string() == shipment).expect("booked");
    assert_eq!(serde_json::to_value(&booking.address).unwrap(), test_order_address());
    assert!(!serde_json::to_string(&booking).unwrap().contains(CLIENT_IP));
    let left = shipment_as(&stack, &warehouse_staff(), &shipment).await;
    assert_eq!(left["status"], "HANDED_OVER");
    assert!(left.get("deliver_to").is_none(), "the parcel left the warehouse: {left}");
    assert_eq!(left["ship_to"]["city"], "Hangzhou");
}

#[tokio::test]
async fn a_return_is_booked_for_collection_at_the_customers_address() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    stack.relay().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let me = owner(&stack, &parcel).await;
    let (status, opened) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(status, 201, "{opened}");
    let ticket = opened["ticket_id"].as_str().unwrap().to_owned();
    let (status, approved) =
        staff_post(&stack, &risk_staff(), &ticket, "decision", Some(json!({"action": "approve"}))).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("AWAITING_RETURN")), "{approved}");

    let bookings = stack.courier.bookings();
    let (collection, _) = bookings.iter().find(|(b, _)| b.return_for.as_deref() == Some(&ticket)).expect("a return");
    assert_eq!(serde_json::to_value(&collection.address).unwrap(), test_order_address());
    assert!(!serde_json::to_string(collection).unwrap().contains(CLIENT_IP));
}

//! The role matrix: who may call which HTTP route, and the few actions inside a route that
//! need more than the route does. One table, [`ROUTES`], that every HTTP handler enforces
//! ([`authorize`], before it reads anything), that the README prints ([`markdown_table`]) and
//! that a test walks route by route, role by role.
//!
//! Staff name their roles in their token's groups; a machine caller's client-credentials token
//! names them as scopes `orderflow/<role>` (so `orderflow/admin` is the admin role).

use crate::auth::{forbidden, Caller, Role};
use crate::http::{segments, Problem};
use lambda_http::Request;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Nobody by token: the request is signed by a payment provider or a courier, and the
    /// handler verifies the signature.
    Signed,
    /// The order's owner: the customer, or a shop backend acting for its customers. The
    /// handler then checks that the order is theirs (else 404).
    Owner,
    /// The owner, or staff with one of the roles (who may see any order's).
    OwnerOrStaff(&'static [Role]),
    /// Staff (or machine callers) with one of the roles.
    Staff(&'static [Role]),
}

/// What calling the route does: only changes are audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Reads,
    Changes,
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    pub method: &'static str,
    /// The route as `infra/template.yaml` declares it, `{name}` for a path parameter.
    pub path: &'static str,
    pub function: &'static str,
    pub audience: Audience,
    pub effect: Effect,
}

use Role::{Admin, CustomerService as Cs, Finance, Operations as Ops, Risk, Warehouse as Wh};

const OPERATIONS: &[Role] = &[Ops, Admin];
const WAREHOUSE: &[Role] = &[Wh, Ops, Admin];
const SERVICE: &[Role] = &[Cs, Ops, Admin];
const CATALOGUE_READERS: &[Role] = &[Cs, Wh, Ops, Admin];
const ORDER_READERS: &[Role] = &[Cs, Risk, Finance, Ops, Admin];
const RISK_DESK: &[Role] = &[Risk, Ops, Admin];
const MONEY: &[Role] = &[Finance, Ops, Admin];

/// Approving a refund that risk control sent to review (inside `POST /admin/tickets/{id}/decision`).
pub const APPROVE_REVIEWED_REFUND: &[Role] = &[Risk, Admin];
/// Who may ask for an order's personal data in the clear, with a reason.
const READ_WITH_REASON: &[Role] = &[Cs, Risk, Ops, Admin];

/// How a personal field of an order shows in the order's views (the customer's and staff's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InViews {
    /// Masked, as said.
    Masked(&'static str),
    Hidden,
}

/// Who sees one personal field of an order, and how: the other half of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct FieldRule {
    pub field: &'static str,
    pub in_views: InViews,
    /// The order's customer reads it in the clear in their own order.
    pub owner: bool,
    /// The [`PACKING`] roles read it in the clear on a parcel they are packing, and the
    /// courier's booking carries it (the label needs it).
    pub packing: bool,
    /// Staff roles that read it in the clear by giving a reason
    /// (`POST /admin/orders/{id}/personal-data`); the read is audited.
    pub on_request: &'static [Role],
}

/// Who reads the customer's address on a parcel while packing it (from its pick wave until the
/// courier takes it): the warehouse alone. Operations and admin, who may do the warehouse's
/// steps, ask for the clear values with a reason like anyone else.
pub const PACKING: &[Role] = &[Wh];

/// Who may read a personal field in the clear, besides staff asking with a reason.
#[derive(Debug, Clone, Copy)]
struct Clear {
    owner: bool,
    packing: bool,
}

const OWNER_AND_PACKING: Clear = Clear { owner: true, packing: true };
const NEITHER: Clear = Clear { owner: false, packing: false };

const fn field(field: &'static str, in_views: InViews, clear: Clear, on_request: &'static [Role]) -> FieldRule {
    FieldRule { field, in_views, owner: clear.owner, packing: clear.packing, on_request }
}

/// The personal fields of an order (sealed at rest; see [`crate::personal`]). Country, province,
/// city, district and a locker's station are not personal: every reader of the order sees them.
pub const PERSONAL_FIELDS: &[FieldRule] = &[
    field("phone", InViews::Masked("the last four digits"), OWNER_AND_PACKING, READ_WITH_REASON),
    field("recipient", InViews::Hidden, OWNER_AND_PACKING, READ_WITH_REASON),
    field("street", InViews::Hidden, OWNER_AND_PACKING, READ_WITH_REASON),
    field("house_number", InViews::Hidden, OWNER_AND_PACKING, READ_WITH_REASON),
    field("client_ip", InViews::Hidden, NEITHER, &[Risk, Admin]),
];

/// The personal fields `caller` may ask for in the clear with a reason.
pub fn fields_on_request(caller: &Caller) -> Vec<&'static str> {
    PERSONAL_FIELDS.iter().filter(|f| caller.has_any(f.on_request)).map(|f| f.field).collect()
}

/// The personal fields an order's customer reads in their own order.
pub fn fields_for_owner() -> Vec<&'static str> {
    PERSONAL_FIELDS.iter().filter(|f| f.owner).map(|f| f.field).collect()
}

/// The personal fields of a parcel's address (see [`FieldRule::packing`]).
pub fn fields_for_packing() -> Vec<&'static str> {
    PERSONAL_FIELDS.iter().filter(|f| f.packing).map(|f| f.field).collect()
}

const fn rule(method: &'static str, path: &'static str, function: &'static str, audience: Audience) -> RouteRule {
    RouteRule {
        method,
        path,
        function,
        audience,
        effect: if matches!(method.as_bytes(), b"GET") { Effect::Reads } else { Effect::Changes },
    }
}

/// A route that answers a POST without changing anything (an upload URL).
const fn read_by_post(path: &'static str, function: &'static str, audience: Audience) -> RouteRule {
    RouteRule { method: "POST", path, function, audience, effect: Effect::Reads }
}

use Audience::{Owner, OwnerOrStaff, Signed, Staff};

/// Every HTTP route of the template, with who may call it.
pub const ROUTES: &[RouteRule] = &[
    rule("POST", "/orders", "order-intake", Owner),
    rule("GET", "/orders/{id}", "order-intake", Owner),
    rule("POST", "/orders/{id}/cancel", "order-intake", Owner),
    rule("POST", "/orders/{id}/verify", "order-intake", Owner),
    rule("POST", "/orders/{id}/verification/resend", "order-intake", Owner),
    rule("POST", "/payments/webhook", "payment-webhook", Signed),
    rule("POST", "/couriers/{courier}/webhook", "courier-webhook", Signed),
    // Stock and warehouses.
    rule("GET", "/admin/warehouses", "staff-api", Staff(CATALOGUE_READERS)),
    rule("PUT", "/admin/warehouses/{id}", "staff-api", Staff(OPERATIONS)),
    rule("GET", "/admin/stock/{sku}", "staff-api", Staff(CATALOGUE_READERS)),
    rule("PUT", "/admin/stock/{sku}/{warehouse}", "staff-api", Staff(OPERATIONS)),
    rule("POST", "/admin/stock/{sku}/{warehouse}/adjustments", "staff-api", Staff(WAREHOUSE)),
    rule("PUT", "/admin/stock/{sku}/{warehouse}/shards", "staff-api", Staff(OPERATIONS)),
    rule("GET", "/admin/hold-policy", "staff-api", Staff(RISK_DESK)),
    rule("PUT", "/admin/hold-policy", "staff-api", Staff(OPERATIONS)),
    // Catalogue, customers, risk.
    rule("GET", "/admin/catalogue/{sku}", "staff-api", Staff(CATALOGUE_READERS)),
    rule("PUT", "/admin/catalogue/{sku}", "staff-api", Staff(OPERATIONS)),
    rule("GET", "/admin/customers/{id}", "staff-api", Staff(&[Cs, Risk, Ops, Admin])),
    rule("PUT", "/admin/customers/{id}", "staff-api", Staff(OPERATIONS)),
    rule("POST", "/admin/customers/{id}/erasure", "staff-api", Staff(&[Cs, Admin])),
    rule("GET", "/admin/risk-rules", "staff-api", Staff(RISK_DESK)),
    rule("PUT", "/admin/risk-rules", "staff-api", Staff(RISK_DESK)),
    // Orders waiting for a person, payments.
    rule("GET", "/admin/review-queue", "staff-api", Staff(&[Cs, Risk, Ops, Admin])),
    rule("GET", "/admin/orders/{id}", "staff-api", Staff(ORDER_READERS)),
    rule("POST", "/admin/orders/{id}/approve", "staff-api", Staff(RISK_DESK)),
    rule("POST", "/admin/orders/{id}/reject", "staff-api", Staff(RISK_DESK)),
    rule("GET", "/admin/payments/reconciliation", "staff-api", Staff(MONEY)),
    rule("POST", "/admin/orders/{id}/payment/accept", "staff-api", Staff(MONEY)),
    rule("POST", "/admin/orders/{id}/payment/refund", "staff-api", Staff(MONEY)),
    rule("GET", "/admin/audit", "staff-api", Staff(&[Finance, Ops, Admin])),
    rule("GET", "/admin/dashboard", "staff-api", Staff(OPERATIONS)),
    rule("GET", "/admin/dashboard/page", "staff-api", Staff(OPERATIONS)),
    rule("POST", "/admin/orders/{id}/personal-data", "staff-api", Staff(READ_WITH_REASON)),
    // Fulfilment.
    rule("GET", "/admin/fulfilment-policy", "fulfilment-api", Staff(WAREHOUSE)),
    rule("PUT", "/admin/fulfilment-policy", "fulfilment-api", Staff(OPERATIONS)),
    rule("POST", "/admin/warehouses/{id}/waves", "fulfilment-api", Staff(WAREHOUSE)),
    rule("GET", "/admin/waves/{id}", "fulfilment-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/waves/{id}/scans", "fulfilment-api", Staff(WAREHOUSE)),
    rule("GET", "/admin/shipments/{id}", "fulfilment-api", Staff(&[Cs, Wh, Ops, Admin])),
    rule("POST", "/admin/shipments/{id}/pack", "fulfilment-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/shipments/{id}/shortage", "fulfilment-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/shipments/{id}/check", "fulfilment-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/shipments/{id}/label", "fulfilment-api", Staff(WAREHOUSE)),
    read_by_post("/admin/shipments/{id}/photo", "fulfilment-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/shipments/{id}/hand-over", "fulfilment-api", Staff(WAREHOUSE)),
    rule("POST", "/shipments/{id}/shortage-answer", "fulfilment-api", Owner),
    // Logistics.
    rule("GET", "/shipments/{id}/tracking", "logistics-api", OwnerOrStaff(SERVICE)),
    rule("POST", "/shipments/{id}/not-received", "logistics-api", Owner),
    rule("POST", "/shipments/{id}/received", "logistics-api", Owner),
    rule("PUT", "/shipments/{id}/delivery-places", "logistics-api", Owner),
    rule("GET", "/admin/parcel-alerts", "logistics-api", Staff(SERVICE)),
    rule("POST", "/admin/shipments/{id}/claim-resolution", "logistics-api", Staff(SERVICE)),
    rule("POST", "/admin/shipments/{id}/lost", "logistics-api", Staff(OPERATIONS)),
    rule("GET", "/admin/courier-kpis", "logistics-api", Staff(OPERATIONS)),
    rule("GET", "/admin/logistics-policy", "logistics-api", Staff(OPERATIONS)),
    rule("PUT", "/admin/logistics-policy", "logistics-api", Staff(OPERATIONS)),
    // After-sales.
    read_by_post("/orders/{id}/evidence", "after-sales-api", Owner),
    rule("POST", "/orders/{id}/tickets", "after-sales-api", Owner),
    rule("GET", "/orders/{id}/tickets", "after-sales-api", Owner),
    rule("GET", "/tickets/{id}", "after-sales-api", Owner),
    rule("POST", "/tickets/{id}/withdraw", "after-sales-api", Owner),
    rule("GET", "/admin/tickets", "after-sales-api", Staff(SERVICE)),
    rule("GET", "/admin/tickets/{id}", "after-sales-api", Staff(&[Cs, Wh, Risk, Ops, Admin])),
    rule("POST", "/admin/tickets/{id}/decision", "after-sales-api", Staff(&[Cs, Risk, Ops, Admin])),
    read_by_post("/admin/orders/{id}/evidence", "after-sales-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/tickets/{id}/received", "after-sales-api", Staff(WAREHOUSE)),
    rule("POST", "/admin/tickets/{id}/qc", "after-sales-api", Staff(WAREHOUSE)),
    rule("GET", "/admin/after-sales-rate", "after-sales-api", Staff(&[Cs, Finance, Ops, Admin])),
    rule("GET", "/admin/after-sales-policy", "after-sales-api", Staff(OPERATIONS)),
    rule("PUT", "/admin/after-sales-policy", "after-sales-api", Staff(OPERATIONS)),
];

/// Every role, in the README's column order.
pub const ALL_ROLES: [Role; 6] = [Cs, Wh, Ops, Risk, Finance, Admin];

impl RouteRule {
    /// Whether `path` (as requested) is this route.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let want = segments(self.path);
        let got = segments(path);
        self.method == method
            && want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| w == g || (w.starts_with('{') && w.ends_with('}')))
    }

    /// Whether a caller with `roles` (and no ownership) may call the route.
    pub fn allows_role(&self, role: Role) -> bool {
        match self.audience {
            Audience::Staff(roles) | Audience::OwnerOrStaff(roles) => roles.contains(&role),
            Audience::Owner | Audience::Signed => false,
        }
    }
}

/// The rule of the route requested, if it is one.
pub fn rule_for(method: &str, path: &str) -> Option<&'static RouteRule> {
    ROUTES.iter().find(|r| r.matches(method, path))
}

/// The verified caller, if the matrix lets them call the route requested: 401 without a token,
/// 403 when the route needs a role (or ownership) the caller does not have. A route the matrix
/// does not know is left to the handler's router (404 or 405), once the caller is known.
pub fn authorize(request: &Request) -> Result<Caller, Problem> {
    let caller = Caller::of(request)?;
    let Some(rule) = rule_for(request.method().as_str(), request.uri().path()) else {
        return Ok(caller);
    };
    let allowed = match rule.audience {
        Audience::Signed => false,
        Audience::Owner => caller.may_act_for_a_customer(),
        Audience::OwnerOrStaff(roles) => caller.may_act_for_a_customer() || caller.has_any(roles),
        Audience::Staff(roles) => caller.has_any(roles),
    };
    if allowed {
        Ok(caller)
    } else {
        Err(forbidden())
    }
}

/// The matrix as a Markdown table, as the README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| Route | Function | Changes | customer |");
    for role in ALL_ROLES {
        out.push_str(&format!(" {} |", role.name()));
    }
    out.push_str("\n|---|---|---|---|");
    out.push_str(&"---|".repeat(ALL_ROLES.len()));
    for rule in ROUTES {
        let customer = match rule.audience {
            Audience::Signed => "signed",
            Audience::Owner | Audience::OwnerOrStaff(_) => "own",
            Audience::Staff(_) => "",
        };
        let changes = if rule.effect == Effect::Changes { "yes" } else { "" };
        out.push_str(&format!("\n| `{} {}` | {} | {changes} | {customer} |", rule.method, rule.path, rule.function));
        for role in ALL_ROLES {
            out.push_str(if rule.allows_role(role) { " ✓ |" } else { " |" });
        }
    }
    let names = |roles: &[Role]| roles.iter().map(|r| format!("`{}`", r.name())).collect::<Vec<_>>().join(", ");
    out.push_str(&format!(
        "\n\nApproving a refund risk control sent to review also needs: {}.\n",
        names(APPROVE_REVIEWED_REFUND)
    ));
    out.push_str(&format!(
        "\n| Personal field | In order views | The customer, own orders | A parcel being packed ({}), its courier | In the clear with a reason (audited) |",
        names(PACKING)
    ));
    out.push_str("\n|---|---|---|---|---|");
    for rule in PERSONAL_FIELDS {
        let views = match rule.in_views {
            InViews::Masked(how) => format!("masked: {how}"),
            InViews::Hidden => "hidden".to_owned(),
        };
        let tick = |yes: bool| if yes { "✓" } else { "" };
        let (owner, packing) = (tick(rule.owner), tick(rule.packing));
        out.push_str(&format!("\n| `{}` | {views} | {owner} | {packing} | {} |", rule.field, names(rule.on_request)));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_request_matches_two_routes_and_parameters_match_any_segment() {
        for rule in ROUTES {
            let concrete = rule.path.replace(['{', '}'], "");
            let hits: Vec<_> = ROUTES.iter().filter(|r| r.matches(rule.method, &concrete)).collect();
            assert_eq!(hits.len(), 1, "{} {} matches {hits:?}", rule.method, rule.path);
        }
        assert!(rule_for("GET", "/admin/orders/01JABC").is_some());
        assert!(rule_for("DELETE", "/admin/orders/01JABC").is_none());
        assert!(rule_for("GET", "/admin/orders/01JABC/extra").is_none());
    }

    #[test]
    fn whoever_may_see_a_field_on_request_may_call_the_route_that_shows_it() {
        let route = rule_for("POST", "/admin/orders/{id}/personal-data").unwrap();
        for field in PERSONAL_FIELDS {
            assert!(field.on_request.iter().all(|role| route.allows_role(*role)), "{}", field.field);
        }
        let names: Vec<_> = PERSONAL_FIELDS.iter().map(|f| f.field).collect();
        assert_eq!(names, crate::personal::FIELDS, "every sealed field has its rule");
    }

    #[test]
    fn whoever_sees_a_parcels_address_may_pack_it_and_read_it() {
        for path in ["/admin/shipments/{id}/pack", "/admin/shipments/{id}/label"] {
            let route = rule_for("POST", path).unwrap();
            assert!(PACKING.iter().all(|role| route.allows_role(*role)), "{path}");
        }
        let read = rule_for("GET", "/admin/shipments/{id}").unwrap();
        assert!(PACKING.iter().all(|role| read.allows_role(*role)));
        assert!(!PACKING.contains(&Cs), "customer service sees the city and a masked phone");
        // The parcel's address is built from exactly these (and a field added here would have
        // to find its place on the label first).
        assert_eq!(fields_for_packing(), ["phone", "recipient", "street", "house_number"]);
    }

    #[test]
    fn every_staff_route_lets_admin_in_and_no_route_lets_everyone_in() {
        for rule in ROUTES.iter().filter(|r| matches!(r.audience, Audience::Staff(_))) {
            assert!(rule.allows_role(Admin), "{} {}", rule.method, rule.path);
            assert!(ALL_ROLES.iter().any(|r| !rule.allows_role(*r)), "{} {}", rule.method, rule.path);
        }
    }
}

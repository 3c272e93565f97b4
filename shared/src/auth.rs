//! Who is calling: read from the claims of the bearer token that API Gateway's JWT authorizer
//! (or, locally, the local gateway, the same way) verified before the handler runs. The handler
//! never verifies a signature itself, and never takes identity, tier or role from the body.
//!
//! - A customer token's `sub` is the customer.
//! - A shop backend's client-credentials token carries [`ON_BEHALF_SCOPE`]: only such a caller
//!   may name the customer in an order body, and it may act on any order.
//! - A staff token's `groups` (or Cognito's `cognito:groups`) claim names roles; a machine
//!   caller's client-credentials token names them as scopes `orderflow/<role>` ([`ADMIN_SCOPE`]
//!   is the admin role). Which role may call which route is [`crate::access`]'s matrix.

use crate::domain::CustomerId;
use crate::http::Problem;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::collections::BTreeSet;

/// A shop backend submitting and managing orders for its customers.
pub const ON_BEHALF_SCOPE: &str = "orderflow/orders.on-behalf";
/// A machine caller of the staff API with the admin role.
pub const ADMIN_SCOPE: &str = "orderflow/admin";
/// What a scope naming a role starts with.
const ROLE_SCOPE_PREFIX: &str = "orderflow/";

/// The staff roles a token's groups may name. Which role may call which route is
/// [`crate::access`]'s business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    CustomerService,
    Warehouse,
    Operations,
    Risk,
    Finance,
    Admin,
}

impl Role {
    pub fn parse(group: &str) -> Option<Self> {
        Some(match group.trim().to_ascii_lowercase().as_str() {
            "customer-service" => Self::CustomerService,
            "warehouse" => Self::Warehouse,
            "operations" => Self::Operations,
            "risk" => Self::Risk,
            "finance" => Self::Finance,
            "admin" => Self::Admin,
            _ => return None,
        })
    }

    /// The role as tokens name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::CustomerService => "customer-service",
            Self::Warehouse => "warehouse",
            Self::Operations => "operations",
            Self::Risk => "risk",
            Self::Finance => "finance",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Customer(CustomerId),
    /// A client-credentials token (a shop backend, a staff tool): its client id and scopes.
    Client {
        client_id: String,
        scopes: BTreeSet<String>,
    },
    Staff {
        subject: String,
        roles: BTreeSet<Role>,
    },
}

impl Caller {
    /// The caller as the verified claims say, or 401 when there are none (a route deployed
    /// without the authorizer) or they name nobody.
    pub fn of(request: &Request) -> Result<Self, Problem> {
        let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
            return Err(unauthenticated());
        };
        let jwt = context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).ok_or_else(unauthenticated)?;
        let claim = |name: &str| jwt.claims.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let subject = claim("sub").ok_or_else(unauthenticated)?;
        let groups: BTreeSet<Role> = ["groups", "cognito:groups"]
            .iter()
            .filter_map(|c| claim(c))
            .flat_map(list)
            .filter_map(Role::parse)
            .collect();
        if !groups.is_empty() {
            return Ok(Self::Staff { subject: subject.to_owned(), roles: groups });
        }
        let mut scopes: BTreeSet<String> = jwt.scopes.iter().flatten().cloned().collect();
        scopes.extend(claim("scope").into_iter().flat_map(list).map(str::to_owned));
        if scopes.iter().any(|s| s.starts_with("orderflow/")) {
            return Ok(Self::Client { client_id: claim("client_id").unwrap_or(subject).to_owned(), scopes });
        }
        let customer = CustomerId::parse(subject).map_err(|_| unauthenticated())?;
        Ok(Self::Customer(customer))
    }

    /// A shop backend acting for its customers.
    pub fn acts_for_customers(&self) -> bool {
        matches!(self, Self::Client { scopes, .. } if scopes.contains(ON_BEHALF_SCOPE))
    }

    /// Whether the caller may see and act on an order of `owner`.
    pub fn may_act_on_order_of(&self, owner: &CustomerId) -> bool {
        match self {
            Self::Customer(me) => me == owner,
            _ => self.acts_for_customers(),
        }
    }

    /// A customer, or a shop backend acting for its customers: who may call a customer's routes
    /// (whose order it is, the handler checks).
    pub fn may_act_for_a_customer(&self) -> bool {
        matches!(self, Self::Customer(_)) || self.acts_for_customers()
    }

    /// The roles the caller holds: a staff token's groups, a machine token's role scopes.
    pub fn roles(&self) -> BTreeSet<Role> {
        match self {
            Self::Staff { roles, .. } => roles.clone(),
            Self::Client { scopes, .. } => {
                scopes.iter().filter_map(|s| s.strip_prefix(ROLE_SCOPE_PREFIX)).filter_map(Role::parse).collect()
            }
            Self::Customer(_) => BTreeSet::new(),
        }
    }

    /// Whether the caller holds one of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles().iter().any(|r| roles.contains(r))
    }

    /// Who acted, for audit records and logs: ids, never names.
    pub fn actor(&self) -> String {
        match self {
            Self::Customer(id) => format!("customer:{id}"),
            Self::Client { client_id, .. } => format!("client:{client_id}"),
            Self::Staff { subject, .. } => format!("staff:{subject}"),
        }
    }
}

/// A claim holding a list, as API Gateway passes it: `[a b]`, a JSON array, or `a b` / `a,b`.
fn list(value: &str) -> Vec<&str> {
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|item| item.trim().trim_matches('"'))
        .filter(|item| !item.is_empty())
        .collect()
}

pub fn unauthenticated() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated", "a valid bearer token is required")
}

pub fn forbidden() -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", "this route needs a role the token does not carry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_scope_claims_read_in_every_shape_api_gateway_passes() {
        assert_eq!(list("[operations admin]"), ["operations", "admin"]);
        assert_eq!(list(r#"["operations","risk"]"#), ["operations", "risk"]);
        assert_eq!(list("orderflow/admin openid"), ["orderflow/admin", "openid"]);
        assert!(list("[]").is_empty());
        assert_eq!(Role::parse("Operations"), Some(Role::Operations));
        assert_eq!(Role::parse("janitor"), None);
    }

    #[test]
    fn a_machine_token_holds_the_roles_its_scopes_name_and_nothing_else() {
        let scopes = ["orderflow/warehouse", "orderflow/orders.on-behalf", "warehouse", "other/admin"];
        let client = Caller::Client { client_id: "wms".into(), scopes: scopes.iter().map(|s| s.to_string()).collect() };
        assert_eq!(client.roles(), BTreeSet::from([Role::Warehouse]));
        assert!(client.has_any(&[Role::Warehouse, Role::Admin]));
        assert!(!client.has_any(&[Role::Admin]));
        for role in [Role::CustomerService, Role::Warehouse, Role::Operations, Role::Risk, Role::Finance, Role::Admin] {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
    }
}

//! What intake makes of an order's personal data: the clear fields (from the request, the
//! client's IP from API Gateway), sealed for the table, and the keyed fingerprints that risk,
//! the phone's code counter and the idempotency record match on.

use super::{unavailable, IntakeDeps};
use crate::domain::{Address, OrderId, OrderRequest};
use crate::http::Problem;
use crate::personal::{order_context, Fingerprint, Fingerprinter, PersonalData, SealedPersonal};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// The order's personal data three ways, made once per request.
pub(super) struct Protected {
    /// In the clear, for scoring: only in memory.
    pub clear: PersonalData,
    pub sealed: SealedPersonal,
    pub prints: Prints,
    /// The request body's keyed fingerprint: it holds the personal values in the clear.
    pub request_hash: String,
}

/// The keyed fingerprints of the order's phone, address and IP.
pub(super) struct Prints {
    pub phone: Fingerprint,
    pub address: Fingerprint,
    pub client_ip: Option<Fingerprint>,
}

pub(super) async fn protect(
    deps: &IntakeDeps,
    asked: &OrderRequest,
    request: &Request,
    order_id: OrderId,
    canonical_body: &[u8],
) -> Result<Protected, Problem> {
    let clear = personal_of(asked, client_ip(request));
    let sealed = deps.personal.sealer.seal(&clear, &order_context(order_id)).await.map_err(unavailable)?;
    let fingerprinter = deps.personal.fingerprints.fingerprinter(&deps.common.store).await.map_err(unavailable)?;
    let prints = Prints {
        phone: fingerprinter.phone(&clear.phone),
        address: address_fingerprint(fingerprinter, &asked.shipping_address),
        client_ip: clear.client_ip.as_deref().and_then(|ip| ip.parse().ok()).map(|ip| fingerprinter.ip(ip)),
    };
    let request_hash = fingerprinter.request(canonical_body).to_string();
    Ok(Protected { clear, sealed, prints, request_hash })
}

/// The personal fields of the request, with the client's IP from the request context.
fn personal_of(asked: &OrderRequest, client_ip: Option<String>) -> PersonalData {
    let address = &asked.shipping_address;
    PersonalData {
        recipient: address.recipient.clone(),
        phone: asked.phone.clone(),
        street: address.street.clone(),
        house_number: address.house_number.clone(),
        client_ip,
    }
}

fn client_ip(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
        _ => None,
    }
}

/// The address's fingerprint from the same parts, in the same order, as a risk list names one
/// (see the staff API's risk rules).
pub(crate) fn address_fingerprint(fingerprinter: &Fingerprinter, address: &Address) -> Fingerprint {
    let place = &address.destination;
    fingerprinter.address(&[
        &place.country,
        &place.province,
        &place.city,
        place.district.as_deref().unwrap_or(""),
        address.street.as_deref().or(place.locker_station.as_deref()).unwrap_or(""),
        address.house_number.as_deref().or(place.locker_number.as_deref()).unwrap_or(""),
    ])
}

//! What the fulfilment and after-sales routes share about booking a courier: the parcel's
//! address opened for the booking (the label's, or a return's place of collection), and the
//! courier's and the key vault's failures as problem details.

use super::conflict;
use crate::courier::CourierError;
use crate::domain::Order;
use crate::http::Problem;
use crate::personal::{parcel_address, ParcelAddress, Sealer, VaultError};
use lambda_http::http::StatusCode;
use tracing::warn;

/// `order`'s address for a courier booking: 409 once its personal data was erased (no label can
/// name where the parcel goes), 500 when its sealed fields do not open (a retry would not
/// help), 503 when the key vault cannot be reached.
pub(crate) async fn booking_address(sealer: &Sealer, order: &Order) -> Result<ParcelAddress, Problem> {
    parcel_address(sealer, order).await.map_err(vault_problem)?.ok_or_else(|| {
        conflict("personal-data-erased", "the order's address was erased: no courier can be booked for it")
    })
}

/// A failure to open personal data, as the caller sees it (the cause only in the log).
pub(crate) fn vault_problem(err: VaultError) -> Problem {
    warn!(error = %err, "personal data did not open");
    match err {
        VaultError::Unavailable(_) => Problem::unavailable(),
        VaultError::Corrupt(_) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "personal-data-unreadable",
            "Personal data unreadable",
            "the order's sealed personal data does not open; retrying will not help",
        ),
    }
}

/// The courier's answer to a booking: a refusal is the caller's to resolve (409), an outage a
/// retry's (503).
pub(crate) fn courier_problem(err: CourierError) -> Problem {
    match err {
        CourierError::Refused(why) => conflict("courier-refused", why),
        CourierError::Unavailable(why) => {
            warn!(error = %why, "courier unreachable");
            Problem::unavailable()
        }
    }
}

//! The address a parcel is labelled with, in the clear: opened for those who put the parcel on
//! its way (the warehouse while it packs the parcel, the courier booked to carry it or to
//! collect a return) and nobody else. Which fields that is, the access matrix says
//! ([`crate::access::fields_for_packing`]); no other field of the order is decrypted.

use super::{order_context, Sealer, VaultError};
use crate::domain::{Address, Order, Phone};
use serde::{Deserialize, Serialize};

/// Who receives the parcel (or hands over a return), where, and how the courier calls them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelAddress {
    pub phone: Phone,
    #[serde(flatten)]
    pub address: Address,
}

/// Only the city: a booking or address printed into a log names nobody.
impl std::fmt::Debug for ParcelAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParcelAddress").field("city", &self.address.destination.city).finish_non_exhaustive()
    }
}

/// `order`'s parcel address, opened; `None` once its personal data was erased.
pub async fn parcel_address(sealer: &Sealer, order: &Order) -> Result<Option<ParcelAddress>, VaultError> {
    let Some(sealed) = order.personal.as_ref() else { return Ok(None) };
    let names = crate::access::fields_for_packing();
    let mut clear = sealer.open_fields(sealed, &order_context(order.order_id), &names).await?;
    let missing = |name: &str| VaultError::Corrupt(format!("the order's sealed fields lack the {name}"));
    let phone = clear.remove("phone").ok_or_else(|| missing("phone"))?;
    let phone = Phone::parse(&phone).map_err(|_| VaultError::Corrupt("the sealed phone does not parse".into()))?;
    let address = Address {
        recipient: clear.remove("recipient").ok_or_else(|| missing("recipient"))?,
        street: clear.remove("street"),
        house_number: clear.remove("house_number"),
        destination: order.shipping_address.clone(),
    };
    Ok(Some(ParcelAddress { phone, address }))
}

//! The domain: types that are valid by construction, the order state machine and warehouse
//! allocation. No I/O lives here.

pub mod address;
pub mod allocation;
pub mod catalogue;
pub mod customer;
pub mod hold_policy;
pub mod order;
pub mod payment;
pub mod request;
pub mod risk;
pub mod values;

pub use address::{Address, AddressKind};
pub use allocation::{
    plan_allocation, single_warehouse, Allocation, AllocationPlan, StockLevels, Warehouse, WarehouseCatalogue,
};
pub use catalogue::{price_lines, CatalogueItem, CurrentPrice, ItemFlag, PricingError};
pub use customer::CustomerProfile;
pub use hold_policy::HoldPolicy;
pub use order::{Order, OrderLine, OrderStatus, PaymentMethod, ShortLine, Trigger, Verification, RESERVATION_DEADLINE};
pub use request::{parse_order_request, FieldError, Limits, OrderDraft, OrderRequest, RequestedLine};
pub use values::{ChannelId, Currency, CustomerId, DeviceId, Money, OrderId, Phone, Quantity, Sku, WarehouseId};

//! The domain: types that are valid by construction, the order state machine and warehouse
//! allocation. No I/O lives here.

pub mod address;
pub mod after_sales_policy;
pub mod allocation;
pub mod catalogue;
pub mod customer;
pub mod dashboard;
pub mod fulfilment_policy;
pub mod hold_policy;
pub mod logistics_policy;
pub mod order;
pub mod order_stages;
pub mod payment;
pub mod refund;
pub mod request;
pub mod risk;
pub mod shipment;
pub mod sla;
pub mod stock_shards;
pub mod ticket;
pub mod tracking;
pub mod values;
pub mod wave;

pub use address::{Address, AddressKind, Destination};
pub use allocation::{
    plan_allocation, single_warehouse, Allocation, AllocationPlan, StockLevels, Warehouse, WarehouseCatalogue,
};
pub use catalogue::{price_lines, CatalogueItem, CurrentPrice, ItemFlag, PricingError};
pub use customer::CustomerProfile;
pub use fulfilment_policy::{CourierChoice, FulfilmentPolicy};
pub use hold_policy::HoldPolicy;
pub use logistics_policy::LogisticsPolicy;
pub use order::{Order, OrderLine, OrderStatus, PaymentMethod, ShortLine, Trigger, Verification, RESERVATION_DEADLINE};
pub use request::{parse_order_request, FieldError, Limits, OrderDraft, OrderRequest, RequestedLine};
pub use shipment::{Shipment, ShipmentId, ShipmentStatus};
pub use stock_shards::{ShardLevels, MAX_SHARDS};
pub use values::{
    ChannelId, CourierId, Currency, CustomerId, DeviceId, Money, OrderId, Phone, Quantity, Sku, WarehouseId,
};

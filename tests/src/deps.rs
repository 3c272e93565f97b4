//! The handlers' dependencies as each function of the template gets them on the local stack:
//! its own counted clients, the stack's clock, and the in-process stand-ins for the outside
//! parties (courier, notifier, payment provider) unless a test gives others.

use crate::{courier, Stack};
use orderflow::courier::Courier;
use orderflow::handlers::after_sales::AfterSalesDeps;
use orderflow::handlers::dashboard::DashboardDeps;
use orderflow::handlers::fulfilment::{FulfilmentCore, FulfilmentDeps};
use orderflow::handlers::hold_expiry::{ExpiryDeps, ExpirySettings};
use orderflow::handlers::logistics::webhook::CourierWebhookDeps;
use orderflow::handlers::logistics::LogisticsDeps;
use orderflow::handlers::order_intake::{IntakeDeps, IntakeSettings};
use orderflow::handlers::payment_processor::{ProcessorDeps, ProcessorSettings};
use orderflow::handlers::payment_webhook::{WebhookDeps, WebhookSettings};
use orderflow::handlers::refunds::RefundDeps;
use orderflow::handlers::staff_api::StaffDeps;
use orderflow::handlers::stock_reservation::{ReservationDeps, ReservationSettings};
use orderflow::photos::DispatchPhotos;
use std::sync::Arc;

impl Stack {
    pub fn intake(&self) -> IntakeDeps {
        let personal = self.personal_keys_for("order-intake");
        IntakeDeps::new(self.common_for("order-intake"), IntakeSettings::default(), self.notifier.clone(), personal)
    }

    pub fn reservation(&self) -> ReservationDeps {
        ReservationDeps::new(self.common_for("stock-reservation"), ReservationSettings::from_config(&self.config))
    }

    pub fn staff(&self) -> StaffDeps {
        StaffDeps::new(self.common_for("staff-api"), &self.config, self.personal_keys_for("staff-api"))
    }

    /// The local stack's webhook signing secret: `LOCAL_PAYMENT_WEBHOOK_SECRET`, or a fixed
    /// development value. The mock provider signs with it.
    pub fn webhook_secret() -> String {
        std::env::var("LOCAL_PAYMENT_WEBHOOK_SECRET").unwrap_or_else(|_| "local-development-webhook-secret".to_owned())
    }

    pub fn payment_webhook(&self) -> WebhookDeps {
        let settings = WebhookSettings::from_lookup(|name| match name {
            "PAYMENT_WEBHOOK_SECRETS" => Some(Self::webhook_secret()),
            _ => None,
        })
        .expect("webhook settings are complete");
        WebhookDeps { common: self.common_for("payment-webhook"), settings }
    }

    pub fn payment_processor(&self) -> ProcessorDeps {
        ProcessorDeps { common: self.common_for("payment-processor"), settings: ProcessorSettings::default() }
    }

    /// fulfilment-api's dependencies as `function` gets them (a second instance, say), booking
    /// waybills with the in-process mock courier.
    pub fn fulfilment_as(&self, function: &'static str) -> FulfilmentDeps {
        self.fulfilment_with(function, self.courier.clone())
    }

    /// The stack's one warm fulfilment-api instance (see the field).
    pub fn warm_fulfilment_api(&self) -> FulfilmentDeps {
        self.fulfilment_api.get_or_init(|| self.fulfilment_as("fulfilment-api")).clone()
    }

    /// Fulfilment's dependencies as `function` gets them, booking waybills through `courier`.
    pub fn fulfilment_with(&self, function: &'static str, courier: Arc<dyn Courier>) -> FulfilmentDeps {
        let photos = DispatchPhotos::new(self.bucket_for(function, "DispatchPhotoBucket"));
        FulfilmentDeps::new(self.common_for(function), courier, photos, self.sealer_for(function))
    }

    /// What the `fulfilment` function holds: the table, the clock, the policy.
    pub fn fulfilment_core(&self, function: &'static str) -> FulfilmentCore {
        FulfilmentCore::new(self.common_for(function))
    }

    /// Logistics' dependencies as `function` (tracking, tracking-poller, logistics-api) gets them,
    /// with the in-process mock courier and notifier.
    pub fn logistics_as(&self, function: &'static str) -> LogisticsDeps {
        self.logistics_with(function, self.courier.clone())
    }

    pub fn logistics_with(&self, function: &'static str, courier: Arc<dyn Courier>) -> LogisticsDeps {
        LogisticsDeps::new(self.common_for(function), courier, self.notifier.clone())
    }

    /// The courier webhook with the local couriers' secrets ([`courier::local_courier_secrets`]).
    pub fn courier_webhook(&self) -> CourierWebhookDeps {
        let secrets = CourierWebhookDeps::secrets_from(Some(courier::local_courier_secrets())).expect("local secrets");
        CourierWebhookDeps { common: self.common_for("courier-webhook"), secrets }
    }

    /// The after-sales routes as deployed, booking return waybills through `courier`.
    pub fn after_sales_with(&self, courier: Arc<dyn Courier>) -> AfterSalesDeps {
        let photos = DispatchPhotos::new(self.bucket_for("after-sales-api", "EvidencePhotoBucket"));
        AfterSalesDeps::new(self.common_for("after-sales-api"), courier, photos, self.sealer_for("after-sales-api"))
    }

    /// The after-sales routes with the in-process mock courier.
    pub fn after_sales(&self) -> AfterSalesDeps {
        self.after_sales_with(self.courier.clone())
    }

    /// The refunds function, paying through the in-process mock provider.
    pub fn refunds(&self) -> RefundDeps {
        RefundDeps { common: self.common_for("refunds"), provider: self.provider.clone() }
    }

    pub fn dashboard(&self) -> DashboardDeps {
        DashboardDeps { common: self.common_for("dashboard") }
    }

    pub fn expiry(&self) -> ExpiryDeps {
        ExpiryDeps { common: self.common_for("hold-expiry"), settings: ExpirySettings::default() }
    }
}

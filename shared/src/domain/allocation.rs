//! Which warehouse serves which line. Preference: the warehouse of the customer's region when it
//! has every line; else one other warehouse that has every line (a neighbour transfer, nearest
//! first); else each line from the first warehouse, in preference order, that has it. A line no
//! single warehouse can serve makes the order short.

use super::order::ShortLine;
use super::values::{Quantity, Sku, WarehouseId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    pub warehouse_id: WarehouseId,
    pub name: String,
    /// Provinces this warehouse is the regional warehouse for.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Warehouses to borrow from when this one is short, nearest first.
    #[serde(default)]
    pub neighbours: Vec<WarehouseId>,
    /// Tie-breaker among the rest: lower comes first.
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarehouseCatalogue {
    warehouses: Vec<Warehouse>,
}

impl WarehouseCatalogue {
    pub fn new(mut warehouses: Vec<Warehouse>) -> Self {
        warehouses.sort_by(|a, b| (a.priority, &a.warehouse_id).cmp(&(b.priority, &b.warehouse_id)));
        Self { warehouses }
    }

    pub fn warehouses(&self) -> &[Warehouse] {
        &self.warehouses
    }

    pub fn is_empty(&self) -> bool {
        self.warehouses.is_empty()
    }

    /// Every warehouse, in the order an order shipping to `province` should try them.
    pub fn preference_for(&self, province: &str) -> Vec<WarehouseId> {
        let regional = self
            .warehouses
            .iter()
            .find(|w| w.regions.iter().any(|r| r.eq_ignore_ascii_case(province)))
            .or(self.warehouses.first());
        let mut order: Vec<WarehouseId> = Vec::with_capacity(self.warehouses.len());
        let mut push = |id: &WarehouseId| {
            if !order.contains(id) && self.warehouses.iter().any(|w| &w.warehouse_id == id) {
                order.push(id.clone());
            }
        };
        if let Some(regional) = regional {
            push(&regional.warehouse_id);
            regional.neighbours.iter().for_each(&mut push);
        }
        self.warehouses.iter().for_each(|w| push(&w.warehouse_id));
        order
    }
}

/// Units available now, per (SKU, warehouse). Missing entries mean none.
pub type StockLevels = HashMap<(Sku, WarehouseId), i64>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub sku: Sku,
    pub warehouse: WarehouseId,
    pub quantity: Quantity,
    /// The stock item the units came from when the SKU's stock is split
    /// ([`super::stock_shards`]); 0, the SKU's own item, is left out.
    #[serde(default, skip_serializing_if = "super::stock_shards::is_own_item")]
    pub shard: u32,
}

impl Allocation {
    /// Units of `sku` from the SKU's own stock item in `warehouse`.
    pub fn new(sku: Sku, warehouse: WarehouseId, quantity: Quantity) -> Self {
        Self { sku, warehouse, quantity, shard: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocationPlan {
    Served(Vec<Allocation>),
    Short(Vec<ShortLine>),
}

/// All lines from one warehouse.
pub fn single_warehouse(lines: &[(Sku, Quantity)], warehouse: &WarehouseId) -> Vec<Allocation> {
    lines.iter().map(|(sku, quantity)| Allocation::new(sku.clone(), warehouse.clone(), *quantity)).collect()
}

pub fn plan_allocation(lines: &[(Sku, Quantity)], preference: &[WarehouseId], levels: &StockLevels) -> AllocationPlan {
    let available = |sku: &Sku, wh: &WarehouseId| levels.get(&(sku.clone(), wh.clone())).copied().unwrap_or(0);
    let has = |sku: &Sku, q: Quantity, wh: &WarehouseId| available(sku, wh) >= i64::from(q.get());

    if let Some(wh) = preference.iter().find(|wh| lines.iter().all(|(sku, q)| has(sku, *q, wh))) {
        return AllocationPlan::Served(single_warehouse(lines, wh));
    }
    let mut served = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    for (sku, quantity) in lines {
        match preference.iter().find(|wh| has(sku, *quantity, wh)) {
            Some(wh) => served.push(Allocation::new(sku.clone(), wh.clone(), *quantity)),
            None => short.push(ShortLine {
                sku: sku.clone(),
                requested: quantity.get(),
                available: preference.iter().map(|wh| available(sku, wh)).max().unwrap_or(0).max(0),
            }),
        }
    }
    if short.is_empty() {
        AllocationPlan::Served(served)
    } else {
        AllocationPlan::Short(short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(id: &str, regions: &[&str], neighbours: &[&str], priority: i32) -> Warehouse {
        Warehouse {
            warehouse_id: WarehouseId::parse(id).unwrap(),
            name: id.to_owned(),
            regions: regions.iter().map(|s| s.to_string()).collect(),
            neighbours: neighbours.iter().map(|s| WarehouseId::parse(s).unwrap()).collect(),
            priority,
        }
    }

    fn catalogue() -> WarehouseCatalogue {
        WarehouseCatalogue::new(vec![
            wh("HZ", &["Zhejiang"], &["SH"], 2),
            wh("SH", &["Shanghai"], &["HZ"], 1),
            wh("GZ", &["Guangdong"], &[], 3),
        ])
    }

    fn id(s: &str) -> WarehouseId {
        WarehouseId::parse(s).unwrap()
    }

    fn line(sku: &str, q: i64) -> (Sku, Quantity) {
        (Sku::parse(sku).unwrap(), Quantity::new(q).unwrap())
    }

    fn levels(entries: &[(&str, &str, i64)]) -> StockLevels {
        entries.iter().map(|(s, w, n)| ((Sku::parse(s).unwrap(), id(w)), *n)).collect()
    }

    fn warehouses_of(plan: &AllocationPlan) -> Vec<&str> {
        match plan {
            AllocationPlan::Served(a) => a.iter().map(|a| a.warehouse.as_str()).collect(),
            AllocationPlan::Short(_) => panic!("short: {plan:?}"),
        }
    }

    #[test]
    fn regional_warehouse_comes_first_then_its_neighbours_then_by_priority() {
        let names: Vec<String> = catalogue().preference_for("Zhejiang").iter().map(|w| w.to_string()).collect();
        assert_eq!(names, ["HZ", "SH", "GZ"]);
        let names: Vec<String> = catalogue().preference_for("Tibet").iter().map(|w| w.to_string()).collect();
        assert_eq!(names, ["SH", "HZ", "GZ"]);
    }

    #[test]
    fn the_regional_warehouse_serves_when_it_has_every_line() {
        let pref = catalogue().preference_for("Zhejiang");
        let plan = plan_allocation(
            &[line("A", 2), line("B", 1)],
            &pref,
            &levels(&[("A", "HZ", 2), ("B", "HZ", 5), ("A", "SH", 9), ("B", "SH", 9)]),
        );
        assert_eq!(warehouses_of(&plan), ["HZ", "HZ"]);
    }

    #[test]
    fn a_neighbour_with_every_line_is_preferred_to_splitting() {
        let pref = catalogue().preference_for("Zhejiang");
        let plan = plan_allocation(
            &[line("A", 2), line("B", 1)],
            &pref,
            &levels(&[("A", "HZ", 2), ("B", "SH", 1), ("A", "SH", 2)]),
        );
        assert_eq!(warehouses_of(&plan), ["SH", "SH"]);
    }

    #[test]
    fn lines_are_split_when_no_single_warehouse_has_everything() {
        let pref = catalogue().preference_for("Zhejiang");
        let plan = plan_allocation(&[line("A", 2), line("B", 1)], &pref, &levels(&[("A", "HZ", 2), ("B", "GZ", 1)]));
        assert_eq!(warehouses_of(&plan), ["HZ", "GZ"]);
    }

    #[test]
    fn a_line_no_warehouse_can_serve_makes_the_order_short() {
        let pref = catalogue().preference_for("Zhejiang");
        let plan = plan_allocation(
            &[line("A", 5), line("B", 1)],
            &pref,
            &levels(&[("A", "HZ", 3), ("A", "SH", 4), ("B", "GZ", 1)]),
        );
        assert_eq!(
            plan,
            AllocationPlan::Short(vec![ShortLine { sku: Sku::parse("A").unwrap(), requested: 5, available: 4 }])
        );
    }

    #[test]
    fn with_no_warehouses_everything_is_short() {
        let plan = plan_allocation(&[line("A", 1)], &[], &StockLevels::new());
        assert!(matches!(plan, AllocationPlan::Short(s) if s.len() == 1));
    }
}

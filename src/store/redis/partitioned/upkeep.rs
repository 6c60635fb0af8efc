//! Upkeep of every partition; gauges summed.

use async_trait::async_trait;

use super::PartitionedStore;
use crate::store::types::StreamGauges;
use crate::store::{DeliveryGauges, StoreError, Upkeep};

#[async_trait]
impl Upkeep for PartitionedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        for part in &self.parts {
            part.ping().await?;
        }
        Ok(())
    }

    async fn production_warnings(&self) -> Result<Vec<String>, StoreError> {
        self.catalogue().production_warnings().await
    }

    async fn prepare(&self) -> Result<(), StoreError> {
        for part in &self.parts {
            part.prepare().await?;
        }
        Ok(())
    }

    async fn trim(&self) -> Result<(), StoreError> {
        for part in &self.parts {
            part.trim().await?;
        }
        Ok(())
    }

    async fn trim_deliveries(&self) -> Result<(), StoreError> {
        for part in &self.parts {
            part.trim_deliveries().await?;
        }
        Ok(())
    }

    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError> {
        let mut total = StreamGauges::default();
        for (p, part) in self.parts.iter().enumerate() {
            let g = part.stream_gauges().await?;
            total.inbound_length += g.inbound_length;
            total.inbound_lag += g.inbound_lag;
            total.inbound_pending += g.inbound_pending;
            total.events_length += g.events_length;
            total.quarantine_length += g.quarantine_length;
            if p == 0 {
                // Of the server (or the node partition 0 is on), not of a partition.
                total.storage_bytes = g.storage_bytes;
                total.free_bytes = g.free_bytes;
            }
        }
        Ok(total)
    }

    async fn delivery_gauges(&self, now_ms: u64) -> Result<DeliveryGauges, StoreError> {
        let mut total = DeliveryGauges::default();
        for part in &self.parts {
            let g = part.delivery_gauges(now_ms).await?;
            total.lag += g.lag;
            total.pending += g.pending;
            total.scheduled += g.scheduled;
            total.due += g.due;
            total.dead += g.dead;
        }
        Ok(total)
    }
}

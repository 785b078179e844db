//! Dataset lineage (CONTRACT section 4a): an export's manifest is recorded by whoever served
//! it (the HTTP route, the CLI) once every byte is out, and read back by admins. Deletes ask
//! which exports held what they delete (`affected_exports`, in `removal`).

use chrono::Utc;

use super::{App, AppError, ExportRequest, ExportSummary};
use crate::domain::lineage::{ExportManifest, ManifestFilters, ManifestSplit};
use crate::domain::types::{Id, PageLimit};

/// Who `collector export` records as the caller of its exports.
pub const CLI_CALLER: &str = "cli";

impl App {
    /// Record the manifest of a finished export that was served whole (`summary` is the one its
    /// stream ended with): the filters it ran with, its line count, the sha256 and size of the
    /// bytes sent, and the records it held. An export of no lines records nothing (None).
    pub async fn record_export(
        &self,
        caller: &str,
        req: &ExportRequest,
        summary: &ExportSummary,
    ) -> Result<Option<ExportManifest>, AppError> {
        if summary.lines == 0 {
            return Ok(None);
        }
        let filter = self.effective_filter(&req.filter);
        let manifest = ExportManifest {
            export_id: Id::new(),
            created_at: Utc::now(),
            caller: caller.to_owned(),
            platform: req.platform.clone(),
            format: summary.format.to_owned(),
            filters: ManifestFilters::of(&filter),
            split: ManifestSplit::of(&filter),
            lines: summary.lines,
            sha256: summary.sha256.clone(),
            bytes: summary.bytes,
        };
        self.hot.record_export(&manifest, &summary.held).await?;
        // A record deleted while the export ran must not be served: its delete may have looked
        // for exports (and forgotten their held records) before this one was recorded. Checked
        // after recording, so a delete that comes later finds this export (deletes look after
        // the data is gone, `App::delete_user`).
        let held: Vec<_> = summary.held.by_user().flat_map(|(_, ids)| ids).collect();
        let refused = match self.hot.live_records(&held).await {
            Ok(live) if held.iter().all(|id| live.contains(id)) => {
                // Served now, so its examples were used. A failure here must not take back an
                // export that is recorded and served: the count is off by one, and logged.
                if let Err(e) = self.hot.increment_example_usage(&summary.used_examples).await {
                    tracing::warn!(error = %e, export_id = %manifest.export_id, "export: example usage not counted");
                }
                return Ok(Some(manifest));
            }
            Ok(_) => AppError::Conflict("records in this export were deleted while it ran; run the export again"),
            // Not checked, so not served: no manifest may name a file nobody got.
            Err(e) => AppError::Store(e),
        };
        self.hot.drop_export(&manifest, &summary.held).await?;
        Err(refused)
    }

    /// Manifests newest first; `cursor` is the last export id of the previous page. The next
    /// cursor is set when the page is full.
    pub async fn list_exports(
        &self,
        limit: PageLimit,
        cursor: Option<Id>,
    ) -> Result<(Vec<ExportManifest>, Option<Id>), AppError> {
        let items = self.hot.list_exports(cursor, limit.get()).await?;
        let next = (items.len() as u32 == limit.get()).then(|| items.last().map(|m| m.export_id)).flatten();
        Ok((items, next))
    }

    pub async fn export_manifest(&self, id: Id) -> Result<ExportManifest, AppError> {
        self.hot.export_manifest(id).await?.ok_or(AppError::NotFound)
    }
}

//! The archive lease and maintenance: taking and releasing the lease, the `collector serve`
//! housekeeping loop, and the reconcile, compact and sweep steps that run before archiving
//! (and alone, for erasure).

use std::collections::{HashMap, HashSet};
use std::time::Duration as StdDuration;

use chrono::Utc;
use tokio::time::Instant;

use super::lines::{ArchiveLines, Line, Pending};
use super::{HOUSEKEEPING_EVERY, LEASE_TTL, LEASE_WAIT_MAX, Maintenance, Run};
use crate::app::{App, AppError};
use crate::domain::archive::{self, ArchiveObject, ObjectState, StorageClass};
use crate::domain::input::ArchiveRequest;
use crate::domain::types::Id;
use crate::ports::{ArchiveItem, Lease, StoreError};

impl App {
    /// Erase deleted records from archive objects now (reconcile, compact, sweep), if no other
    /// run holds the lease; None when one does (it compacts anyway). Runs with archiving
    /// disabled too: erasure is not optional.
    pub async fn compact_now(&self) -> Result<Option<Maintenance>, AppError> {
        let Ok(_local) = self.local_runs.try_lock() else { return Ok(None) };
        let run_id = archive::new_run_id(Utc::now());
        let Some(lease) = self.hot.acquire_lease(&run_id, Utc::now(), LEASE_TTL).await? else {
            return Ok(None);
        };
        let mut run = Run {
            run_id,
            next_object: 0,
            lease: Some(lease),
            renewed: Instant::now(),
            deadline: None,
            compacted: Instant::now(),
        };
        let mut m = Maintenance::default();
        let result = self.maintain(&mut run, &mut m).await;
        self.release(&run).await;
        result.map(|_| Some(m))
    }

    /// `collector serve`'s own scheduler, for a machine without one: every
    /// [`HOUSEKEEPING_EVERY`] it erases deleted lines from archive objects (so bytes go within a
    /// minute of a delete), and once a day, when `COLLECTOR_ARCHIVE_AT` (UTC) passes, it runs
    /// the archive. Failures are logged and retried at the next tick.
    pub async fn housekeeping(self) {
        self.housekeeping_every(HOUSEKEEPING_EVERY).await
    }

    /// [`App::housekeeping`] with another period (tests).
    pub async fn housekeeping_every(self, every: StdDuration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Started after today's time: the first run is tomorrow's, not one at every restart.
        let mut last_daily =
            self.config.archive_at.filter(|at| Utc::now().time() >= *at).map(|_| Utc::now().date_naive());
        loop {
            tick.tick().await;
            // Tombstones to erase, or a pending object left by a run that died (its bytes can
            // hold records deleted since: reconcile settles it now, not at tomorrow's run).
            let work = match self.hot.tombstoned_slots().await {
                Ok(slots) if !slots.is_empty() => Ok(true),
                Ok(_) => self
                    .hot
                    .list_archive_objects(None)
                    .await
                    .map(|rows| rows.iter().any(|o| o.state == ObjectState::Pending)),
                Err(e) => Err(e),
            };
            match work {
                Ok(true) => match self.compact_now().await {
                    Ok(Some(m)) => tracing::info!(compacted = m.compacted_objects, erased = m.erased_lines, "erasure"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "erasure failed; retrying at the next tick"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "erasure: reading the catalog failed"),
            }
            let now = Utc::now();
            let Some(at) = self.config.archive_at else { continue };
            if !self.config.enable_data_archiving || now.time() < at || last_daily == Some(now.date_naive()) {
                continue;
            }
            last_daily = Some(now.date_naive());
            let req = ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
            match self.archive(&req, None, None).await {
                Ok(_) | Err(AppError::ArchiveRunning) => {}
                Err(e) => tracing::warn!(error = %e, "daily archive run failed"),
            }
        }
    }

    pub(super) async fn release(&self, run: &Run) {
        if let Some(lease) = &run.lease
            && let Err(e) = self.hot.release_lease(lease).await
        {
            // It expires by itself.
            tracing::warn!(error = %e, "archive: releasing the lease failed");
        }
    }

    pub(super) async fn take_lease(
        &self,
        holder: &str,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<Lease, AppError> {
        let give_up = deadline.unwrap_or_else(|| Instant::now() + LEASE_WAIT_MAX);
        loop {
            if let Some(lease) = self.hot.acquire_lease(holder, Utc::now(), LEASE_TTL).await? {
                return Ok(lease);
            }
            if !wait || Instant::now() >= give_up {
                return Err(AppError::ArchiveRunning);
            }
            tokio::time::sleep(StdDuration::from_millis(250)).await;
        }
    }

    /// Reconcile, compact, sweep. False when the time budget ran out first.
    pub(super) async fn maintain(&self, run: &mut Run, m: &mut Maintenance) -> Result<bool, AppError> {
        self.reconcile(run, m).await?;
        if !self.compact(run, m).await? {
            return Ok(false);
        }
        self.sweep(run, m).await?;
        Ok(true)
    }

    /// Pending rows are runs that died between their first and last step: roll each forward
    /// when its object was written (records still hot with the same links move; the rest are
    /// tombstoned), back when it was not.
    async fn reconcile(&self, run: &mut Run, m: &mut Maintenance) -> Result<(), AppError> {
        let pending: Vec<ArchiveObject> = self
            .hot
            .list_archive_objects(None)
            .await?
            .into_iter()
            .filter(|o| o.state == ObjectState::Pending)
            .collect();
        for row in pending {
            run.keep_lease(self, false).await?;
            let lease = run.lease()?.clone();
            match self.object_contents(&row.object_key).await? {
                None => {
                    self.hot.abort_archive(&lease, &row).await?;
                    m.rolled_back += 1;
                }
                Some(c) => {
                    // Its writer may have died after making it visible and before making it
                    // durable: the records leave the hot store only once it is.
                    self.objects.make_durable(&row.object_key).await?;
                    let obj = ArchiveObject {
                        state: ObjectState::Committed,
                        record_count: c.lines,
                        raw_bytes: c.raw_bytes,
                        compressed_bytes: c.compressed_bytes,
                        storage_class: StorageClass::for_size(c.compressed_bytes),
                        ..row
                    };
                    self.hot.commit_archive(&lease, &obj, &c.items).await?;
                    m.rolled_forward += 1;
                }
            }
        }
        Ok(())
    }

    /// What an object holds (ids with their link counts, sizes), or None when it does not exist.
    async fn object_contents(&self, key: &str) -> Result<Option<ObjectContents>, AppError> {
        let mut lines = match ArchiveLines::open(self.objects.as_ref(), key).await {
            Ok(l) => l,
            Err(AppError::Store(StoreError::NotFound)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (mut items, mut count) = (Vec::new(), 0i64);
        while let Some(line) = lines.next_line().await? {
            count += 1;
            match line {
                Line::Record(rec) => items.push(ArchiveItem {
                    id: rec.interaction_id,
                    links: (rec.feedback.len() + rec.validations.len()) as i64,
                }),
                // A line no reader can serve must not replace its record: a link count no record
                // has makes the commit leave the record hot and tombstone the line (the next
                // compaction erases it). A line without a known id stays, read by no one.
                Line::Bad { id: Some(id), .. } => items.push(ArchiveItem { id, links: -1 }),
                Line::Bad { id: None, .. } => {}
            }
        }
        Ok(Some(ObjectContents {
            items,
            lines: count,
            raw_bytes: lines.raw_bytes,
            compressed_bytes: lines.compressed_bytes,
        }))
    }

    /// Rewrite every object that has tombstones without those lines: the new object under a new
    /// key, the row swapped to it with the tombstones cleared in one write, the old object
    /// deleted. False when the time budget ran out first.
    pub(super) async fn compact(&self, run: &mut Run, m: &mut Maintenance) -> Result<bool, AppError> {
        let slots = self.hot.tombstoned_slots().await?;
        if slots.is_empty() {
            return Ok(true);
        }
        let rows: HashMap<String, ArchiveObject> =
            self.hot.list_archive_objects(None).await?.into_iter().map(|o| (o.slot.clone(), o)).collect();
        for slot in slots {
            if run.out_of_time() {
                return Ok(false);
            }
            run.keep_lease(self, false).await?;
            let dead = self.hot.tombstones(&slot).await?;
            let cleared: Vec<Id> = dead.iter().copied().collect();
            let lease = run.lease()?.clone();
            let Some(row) = rows.get(&slot) else {
                // The row went with an earlier compaction that was cut short.
                self.hot.clear_tombstones(&lease, &slot, &cleared).await?;
                continue;
            };
            if row.state == ObjectState::Pending {
                continue;
            }
            let key = run.next_key(&row.platform, row.date);
            let mut kept = Pending::open(self.objects.as_ref(), row.platform.clone(), row.date, key, false).await?;
            let (mut erased, mut copied_bad, mut lost) = (0i64, 0i64, 0u64);
            // Errors reading the old object are `Unreadable`; writing the new one, `Write`.
            let copied: Result<(), CopyError> = async {
                let mut lines =
                    ArchiveLines::open(self.objects.as_ref(), &row.object_key).await.map_err(CopyError::Unreadable)?;
                while let Some(line) = lines.next_line().await.map_err(CopyError::Unreadable)? {
                    match line {
                        Line::Record(rec) if dead.contains(&rec.interaction_id) => erased += 1,
                        Line::Record(rec) => kept.push(&rec).await.map_err(CopyError::Write)?,
                        // An unreadable line is dropped only when its id is found and deleted;
                        // any other is copied byte for byte, never lost.
                        Line::Bad { id: Some(id), .. } if dead.contains(&id) => erased += 1,
                        Line::Bad { number, raw, .. } => {
                            tracing::warn!(object_key = %row.object_key, line = number, "compaction: an unreadable line is copied as it is");
                            kept.push_raw(&raw).await.map_err(CopyError::Write)?;
                            copied_bad += 1;
                        }
                    }
                }
                lost = lines.unreadable.segments;
                if lost > 0 {
                    // Nothing can inflate it (no reader ever served it); keeping the bytes would
                    // also keep any deleted line inside them.
                    tracing::error!(object_key = %row.object_key, "compaction: a corrupt gzip segment cannot be copied and is dropped");
                }
                Ok(())
            }
            .await;
            match copied {
                Ok(()) => {}
                Err(CopyError::Unreadable(e)) => {
                    kept.abort().await;
                    // One object that cannot be read (gone, damaged storage) must not keep every
                    // other object's deleted lines in their bytes, nor stop archiving: it is
                    // reported, keeps its tombstones, and is tried again by the next run.
                    tracing::error!(object_key = %row.object_key, error = %e, "compaction: the object cannot be read; its deleted lines stay tombstoned and the next run tries again");
                    m.failed_compactions += 1;
                    continue;
                }
                // Writing failed (storage throttled, a full disk): the run stops, as for any write.
                Err(CopyError::Write(e)) => {
                    kept.abort().await;
                    return Err(e);
                }
            }
            crash_point!("compact.before_upload");
            let new = if kept.items.is_empty() && kept.copied_lines == 0 {
                kept.abort().await;
                None
            } else {
                let w = kept.finish().await?;
                Some(w.object(row.slot.clone(), row.platform.clone(), row.date, &run.run_id))
            };
            let swapped: Result<(), AppError> = async {
                crash_point!("compact.before_swap");
                self.hot.apply_compaction(&lease, row, new.as_ref(), &cleared).await?;
                // The swap went through but its answer is lost (a timeout after the write).
                crash_point!("compact.swap_answer_lost");
                Ok(())
            }
            .await;
            // On an error the new object stays: the swap may have gone through (a lost answer),
            // and then the row points at it. The sweep deletes it if no row does.
            swapped?;
            crash_point!("compact.after_swap");
            self.objects.delete(&row.object_key).await?;
            m.compacted_objects += 1;
            m.erased_lines += erased;
            m.copied_unreadable_lines += copied_bad;
            m.dropped_corrupt_segments += lost as i64;
        }
        Ok(true)
    }

    /// Delete objects under `archive/` that no row points at (left by a run that died before
    /// its pending row was rolled back, or by a compaction cut short). The objects are listed
    /// before the rows are read: every object a run writes has its row first (a pending row, or
    /// the row it replaces) except a compaction's new object, which gets its row at the swap.
    /// So the lease is checked again after the rows are read: a run that took the lease before
    /// writing an object this run listed has a newer token, and this run stops there.
    async fn sweep(&self, run: &mut Run, m: &mut Maintenance) -> Result<(), AppError> {
        run.keep_lease(self, true).await?;
        fail::fail_point!("sweep.before_listing");
        let listed = self.objects.list("archive/").await?;
        let live: HashSet<String> =
            self.hot.list_archive_objects(None).await?.into_iter().map(|o| o.object_key).collect();
        run.keep_lease(self, true).await?;
        // This run held the lease here: a run that takes it over later writes only after this.
        let confirmed = Instant::now();
        for key in listed {
            if !live.contains(&key) {
                self.objects.delete(&key).await?;
                m.swept_objects += 1;
            }
        }
        // What writers whose process died left (a folder's staging files): not objects, so not
        // listed, but their bytes can hold records deleted since, so they go however young (a
        // CLI run stopped with Ctrl-C and run again at once left them for another day): every
        // one last written before this run confirmed its lease. This run has no write in
        // flight; another writer then can only be a run that had lost the lease, whose write
        // fails at its finish (its records stay hot, its pending row is rolled back by the next
        // run): nothing is lost. One written since can be a new holder's, had this run lost the
        // lease meanwhile: it stays.
        let abandoned = self.objects.remove_abandoned_writes("archive/", confirmed.elapsed()).await?;
        m.swept_objects += i64::try_from(abandoned).unwrap_or(i64::MAX);
        // Payloads kept outside the records (DynamoDB's overflow objects) whose delete failed.
        let erased = self.hot.finish_payload_erasures().await?;
        if erased > 0 {
            tracing::info!(erased, "archive: overflow payloads left by earlier deletes erased");
        }
        Ok(())
    }
}

/// Why a compaction's copy failed: reading the old object, or writing the new one.
enum CopyError {
    Unreadable(AppError),
    Write(AppError),
}

/// What [`App::object_contents`] found.
struct ObjectContents {
    items: Vec<ArchiveItem>,
    /// Every line, readable or not.
    lines: i64,
    raw_bytes: i64,
    compressed_bytes: i64,
}

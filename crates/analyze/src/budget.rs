//! What a scan may keep and hold: record caps and the shared memory budget.
//!
//! A small layer can describe a huge amount: 800,000 dpkg packages fit in a 2 MiB gzip
//! layer and once cost a scan 3.3 GB. So everything analyzers keep is counted *as it is
//! created*, against caps per layer and per image ([`Caps`], named limits in
//! docs/limits.md):
//!
//! - **packages** of every ecosystem;
//! - **file records**: tar entries and whiteouts, and the paths package databases list;
//! - **findings**: secrets and unknowns.
//!
//! A [`Budget`] is one layer walk's handle on its counters and on its image's
//! ([`ImageTally`], shared by the parallel walks of one scan, and charged for cached layers
//! too). Parsers that can produce many records from one file take the remaining count and
//! stop one record past it, so memory stays bounded before the cap is reached, not after.
//! Crossing a cap is an error naming the limit ([`CapExceeded`]): the dispatcher fails the
//! walk, the scan fails, the gate denies — never a silently shortened list.
//!
//! The analyzers' large buffers (a package database read whole, a Java archive and the
//! archives nested in it, SQLite's copy of an rpm database) are reserved in a
//! [`MemoryBudget`] shared by every walk of a scanner before they are read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use gantry_layer::Limits;

use crate::LayerReport;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kept {
    /// Packages, every ecosystem together.
    Packages,
    /// Tar entries, whiteouts and paths listed by package databases.
    Files,
    /// Secrets and unknowns.
    Findings,
}

impl Kept {
    const ALL: [Kept; 3] = [Kept::Packages, Kept::Files, Kept::Findings];

    fn index(self) -> usize {
        match self {
            Kept::Packages => 0,
            Kept::Files => 1,
            Kept::Findings => 2,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kept::Packages => "packages",
            Kept::Files => "file records",
            Kept::Findings => "findings",
        }
    }
}

/// Whether a cap is about one layer or about all layers of an image together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One layer.
    Layer,
    /// The layers of one image together.
    Image,
}

/// The record caps of a scan, per layer and per image (see [`Limits`] for each default
/// and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    layer: [u64; 3],
    image: [u64; 3],
}

impl Caps {
    /// The caps set in `limits`.
    pub fn from_limits(limits: &Limits) -> Caps {
        Caps {
            layer: [
                limits.max_layer_packages,
                limits.max_layer_files,
                limits.max_layer_findings,
            ],
            image: [
                limits.max_image_packages,
                limits.max_image_files,
                limits.max_image_findings,
            ],
        }
    }

    /// The cap on `kept` in `scope`.
    pub fn get(&self, kept: Kept, scope: Scope) -> u64 {
        match scope {
            Scope::Layer => self.layer[kept.index()],
            Scope::Image => self.image[kept.index()],
        }
    }

    pub(crate) fn exceeded(&self, kept: Kept, scope: Scope) -> CapExceeded {
        let name = match (kept, scope) {
            (Kept::Packages, Scope::Layer) => "layer-packages",
            (Kept::Files, Scope::Layer) => "layer-files",
            (Kept::Findings, Scope::Layer) => "layer-findings",
            (Kept::Packages, Scope::Image) => "image-packages",
            (Kept::Files, Scope::Image) => "image-files",
            (Kept::Findings, Scope::Image) => "image-findings",
        };
        CapExceeded {
            name,
            limit: self.get(kept, scope),
            kept,
            scope,
        }
    }
}

impl Default for Caps {
    fn default() -> Caps {
        Caps::from_limits(&Limits::default())
    }
}

/// A record cap was crossed: the scan stops, and the image is denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} {} in {} (limit {name}={limit})", kept.noun(), match scope {
    Scope::Layer => "one layer",
    Scope::Image => "the image's layers together",
})]
pub struct CapExceeded {
    /// The limit's name in docs/limits.md (`layer-packages`, `image-files`, …).
    pub name: &'static str,
    /// Its value.
    pub limit: u64,
    /// What was counted.
    pub kept: Kept,
    /// Per layer or per image.
    pub scope: Scope,
}

/// How many records of each kind `report` holds, as the caps count them.
pub fn kept_in(report: &LayerReport) -> [(Kept, u64); 3] {
    let listed: usize = report
        .file_lists
        .iter()
        .map(|l| l.files.len())
        .sum::<usize>()
        + report.packages.iter().map(|p| p.files.len()).sum::<usize>();
    [
        (Kept::Packages, report.packages.len() as u64),
        (
            Kept::Files,
            (report.files.len() + report.whiteouts.len() + listed) as u64,
        ),
        (
            Kept::Findings,
            (report.secrets.len() + report.unknowns.len()) as u64,
        ),
    ]
}

/// The counts of one image, shared by its layer walks (and charged for cached layers).
#[derive(Debug, Default)]
pub struct ImageTally {
    kept: [AtomicU64; 3],
}

impl ImageTally {
    /// A fresh tally, to share between the walks of one image.
    pub fn new() -> Arc<ImageTally> {
        Arc::default()
    }

    /// Adds `n` records of `kept`; the error when that crosses the image cap.
    fn add(&self, caps: &Caps, kept: Kept, n: u64) -> Result<(), CapExceeded> {
        let before = self.kept[kept.index()].fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > caps.get(kept, Scope::Image) {
            return Err(caps.exceeded(kept, Scope::Image));
        }
        Ok(())
    }

    /// Charges what a layer report already holds (a cached layer): checked against the layer
    /// caps (they may have been lowered since it was cached) and added to the image's.
    pub fn charge_report(&self, caps: &Caps, report: &LayerReport) -> Result<(), CapExceeded> {
        for (kept, n) in kept_in(report) {
            if n > caps.get(kept, Scope::Layer) {
                return Err(caps.exceeded(kept, Scope::Layer));
            }
            self.add(caps, kept, n)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct LayerTally {
    caps: Caps,
    kept: [AtomicU64; 3],
    image: Arc<ImageTally>,
    exceeded: Mutex<Option<CapExceeded>>,
}

/// One layer walk's budget of records. Cheap to clone: every clone (the dispatcher's, each
/// analyzer's) counts into the same layer and image tallies.
#[derive(Debug, Clone)]
pub struct Budget {
    inner: Arc<LayerTally>,
}

impl Budget {
    /// A layer's budget under `caps`, counting also into `image`.
    pub fn new(caps: Caps, image: Arc<ImageTally>) -> Budget {
        Budget {
            inner: Arc::new(LayerTally {
                caps,
                kept: Default::default(),
                image,
                exceeded: Mutex::new(None),
            }),
        }
    }

    /// A budget for one layer walked on its own (its image tally is its own).
    pub fn for_layer(caps: Caps) -> Budget {
        Budget::new(caps, ImageTally::new())
    }

    /// How many more records of `kept` this layer may keep, under both its caps and its
    /// image's. A parser that can produce many records from one file takes this and stops
    /// one record past it (enough to know the cap is crossed).
    pub fn remaining(&self, kept: Kept) -> u64 {
        let t = &self.inner;
        let i = kept.index();
        let layer = t
            .caps
            .get(kept, Scope::Layer)
            .saturating_sub(t.kept[i].load(Ordering::Relaxed));
        let image = t
            .caps
            .get(kept, Scope::Image)
            .saturating_sub(t.image.kept[i].load(Ordering::Relaxed));
        layer.min(image)
    }

    /// [`remaining`](Self::remaining) plus one, as a length: the most a parser should
    /// collect before it is charged.
    pub fn parse_limit(&self, kept: Kept) -> usize {
        usize::try_from(self.remaining(kept))
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }

    /// Counts `n` more records of `kept`. Returns whether they may be kept: `false` once a
    /// cap is crossed, which is remembered for [`exceeded`](Self::exceeded) (the caller then
    /// drops the records; the walk fails at the dispatcher).
    pub fn charge(&self, kept: Kept, n: usize) -> bool {
        let t = &self.inner;
        let n = n as u64;
        let before = t.kept[kept.index()].fetch_add(n, Ordering::Relaxed);
        let result = if before.saturating_add(n) > t.caps.get(kept, Scope::Layer) {
            Err(t.caps.exceeded(kept, Scope::Layer))
        } else {
            t.image.add(&t.caps, kept, n)
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                let mut first = t.exceeded.lock().unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert(e);
                false
            }
        }
    }

    /// Pushes `item` onto `into` if one more record of `kept` may be kept.
    pub fn keep<T>(&self, kept: Kept, into: &mut Vec<T>, item: T) {
        if self.charge(kept, 1) {
            into.push(item);
        }
    }

    /// Appends `items` to `into` if that many more records of `kept` may be kept.
    pub fn keep_all<T>(&self, kept: Kept, into: &mut Vec<T>, items: Vec<T>) {
        if self.charge(kept, items.len()) {
            into.extend(items);
        }
    }

    /// The first cap crossed in this layer, if any.
    pub fn exceeded(&self) -> Option<CapExceeded> {
        self.inner
            .exceeded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What this layer has kept so far, by kind.
    pub fn kept(&self) -> [(Kept, u64); 3] {
        Kept::ALL.map(|k| (k, self.inner.kept[k.index()].load(Ordering::Relaxed)))
    }
}

impl Default for Budget {
    /// One layer under the default caps.
    fn default() -> Budget {
        Budget::for_layer(Caps::default())
    }
}

/// Reservations below this size are not taken: the small reads of every walk (the secrets
/// scanner's 1 MiB, manifests of a few KiB) are a fixed cost per walk (docs/limits.md), and
/// counting each of them would only add contention.
pub const LARGE_BUFFER: u64 = 1024 * 1024;

/// Bytes of large analyzer buffers, shared by every layer walk of a scanner (parallel
/// layers and `serve` workers).
///
/// A walk reserves what it is about to hold — the content it reads and what its analyzers
/// may allocate to handle it — in one reservation, before reading, and gives it back when
/// the entry is done. A walk never holds one reservation while waiting for another, so
/// waiting cannot deadlock; a request larger than the whole budget waits for all of it.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        })
    }

    /// The budget's size.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> u64 {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `bytes`, waiting until they are free (at most the whole budget is reserved,
    /// however large the request). Blocks the thread: call it from the blocking pool, where
    /// layers are walked. Requests under [`LARGE_BUFFER`] return at once, reserving nothing.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Reservation {
        if bytes < LARGE_BUFFER {
            return Reservation {
                budget: None,
                bytes: 0,
            };
        }
        let bytes = bytes.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free < bytes {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= bytes;
        Reservation {
            budget: Some(Arc::clone(self)),
            bytes,
        }
    }
}

/// Bytes reserved in a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
#[must_use = "the reservation is given back when dropped"]
pub struct Reservation {
    budget: Option<Arc<MemoryBudget>>,
    bytes: u64,
}

impl Reservation {
    /// Bytes reserved (0 for a small request).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            let mut free = budget.free.lock().unwrap_or_else(PoisonError::into_inner);
            *free += self.bytes;
            budget.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn caps(layer: u64, image: u64) -> Caps {
        Caps {
            layer: [layer; 3],
            image: [image; 3],
        }
    }

    #[test]
    fn a_layer_cap_is_crossed_by_the_record_past_it() {
        let b = Budget::for_layer(caps(3, 100));
        assert_eq!(b.remaining(Kept::Packages), 3);
        assert_eq!(b.parse_limit(Kept::Packages), 4);
        assert!(b.charge(Kept::Packages, 3));
        assert_eq!(b.exceeded(), None);
        assert!(!b.charge(Kept::Packages, 1));
        let e = b.exceeded().unwrap();
        assert_eq!((e.name, e.limit), ("layer-packages", 3));
        assert_eq!(
            e.to_string(),
            "more than 3 packages in one layer (limit layer-packages=3)"
        );
        // Other kinds have their own counters.
        assert!(b.charge(Kept::Files, 3));
    }

    #[test]
    fn layers_of_one_image_share_the_image_cap() {
        let image = ImageTally::new();
        let a = Budget::new(caps(10, 15), Arc::clone(&image));
        let b = Budget::new(caps(10, 15), Arc::clone(&image));
        assert!(a.charge(Kept::Findings, 8));
        assert_eq!(b.remaining(Kept::Findings), 7);
        assert!(!b.charge(Kept::Findings, 8));
        assert_eq!(b.exceeded().unwrap().name, "image-findings");
        assert_eq!(a.exceeded(), None);
    }

    #[test]
    fn cached_reports_are_charged_to_their_image() {
        let image = ImageTally::new();
        let report = LayerReport {
            unknowns: vec![
                crate::Unknown {
                    analyzer: "x".into(),
                    path: "p".into(),
                    reason: "r".into(),
                };
                4
            ],
            ..LayerReport::default()
        };
        assert_eq!(image.charge_report(&caps(5, 6), &report), Ok(()));
        let e = image.charge_report(&caps(5, 6), &report).unwrap_err();
        assert_eq!(e.name, "image-findings");
        let e = ImageTally::new()
            .charge_report(&caps(3, 100), &report)
            .unwrap_err();
        assert_eq!(e.name, "layer-findings");
    }

    #[test]
    fn memory_is_given_back_and_waiters_proceed() {
        let budget = MemoryBudget::new(8 << 20);
        let small = budget.reserve(1000);
        assert_eq!((small.bytes(), budget.available()), (0, 8 << 20));
        let big = budget.reserve(6 << 20);
        assert_eq!(budget.available(), 2 << 20);
        // More than the whole budget: clamped, so it waits for everything.
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.reserve(64 << 20).bytes())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "it cannot fit while 6 MiB are held");
        drop(big);
        assert_eq!(waiter.join().unwrap(), 8 << 20);
        assert_eq!(budget.available(), 8 << 20);
    }
}

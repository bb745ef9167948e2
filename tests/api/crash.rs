//! A power cut loses nothing acknowledged (issue #21). The store runs on a simulated disk that
//! keeps only what was synced (`store::SimulatedDisk`, the crash simulation of redb's own
//! tests). Real operations of every kind run on it — the model test's steps: projects made,
//! renamed and deleted with their cascade, every project-owned kind, webhooks and the outbox
//! entries their events queue — until, at a random call to the disk, the power goes. The disk
//! comes back with what was synced, and none, all, or the first pieces of what was written
//! since, torn at a random 4 KiB boundary; the store is opened again. After every
//! reopen:
//! - every acknowledged audit entry is there;
//! - if the write in flight left no audit entry, the store holds exactly, byte for byte, what
//!   it held when the last write was acknowledged: every acknowledged write, nothing of the
//!   refused one;
//! - if it left its entries, it is whole: the model takes that write's project from the store,
//!   and everything else must still agree with the model;
//! - every record agrees with the model, and every index entry, search posting, counter,
//!   public id and outbox row with its record (`store_model::check`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rogeriq::store::{Limits, SimulatedDisk, Store, tables};

use crate::helpers::{Rng, skipped_on_postgres};
use crate::store_model::{Entries, Model, check, make_orgs, scan, step};

/// Why these tests skip on PostgreSQL: they run a redb store on a simulated disk (a
/// PostgreSQL store's faults are tests/api/database.rs').
const SIMULATED_DISK: &str =
    "a redb store on a simulated disk; database.rs tests PostgreSQL's faults";

/// Power cuts in one run of the test, over all seeds.
const CUTS: usize = 1000;
const SEEDS: [u64; 4] = [0x5EED_0001, 0x5EED_0002, 0xC0FF_EE00, 21];
/// Cuts a store goes through before the next starts on a new disk: a small store keeps each
/// check short.
const CUTS_PER_STORE: usize = 10;
/// The most disk calls (writes, length changes, syncs) before a cut.
const MOST_CALLS_BEFORE_A_CUT: usize = 40;

type Dump = BTreeMap<&'static str, Entries>;

/// Every table of the store.
fn dump(store: &Store) -> Dump {
    tables::ALL
        .into_iter()
        .map(|table| (table.name(), scan(store, table)))
        .collect()
}

fn open(disk: &SimulatedDisk) -> Store {
    Store::open_on(disk.clone(), Limits::default()).expect("the store opens after a power cut")
}

/// What one seed's run saw.
#[derive(Default, Debug)]
struct Seen {
    cuts: usize,
    /// Cuts after which the refused write was there, whole.
    made_anyway: usize,
    /// Restarts that kept a part of the unsynced writes, torn.
    torn: usize,
    acknowledged: usize,
}

fn run(seed: u64, cuts: usize) -> Seen {
    let mut rng = Rng(seed);
    let mut seen = Seen::default();
    for _ in 0..cuts.div_ceil(CUTS_PER_STORE) {
        cut_again_and_again(seed, &mut rng, CUTS_PER_STORE, &mut seen);
    }
    seen
}

/// One store on a new disk, through `cuts` power cuts.
fn cut_again_and_again(seed: u64, rng: &mut Rng, cuts: usize, seen: &mut Seen) {
    let disk = SimulatedDisk::new();
    let mut store = open(&disk);
    let orgs = make_orgs(&store);
    let mut model = Model::default();
    let mut acked = dump(&store);
    let mut deletes_with_records = 0;
    let mut n = 0;
    for cut in 0..cuts {
        disk.cut_power_after(1 + rng.below(MOST_CALLS_BEFORE_A_CUT) as u64);
        let refused = loop {
            n += 1;
            match step(&store, &mut model, rng, &orgs, n, &mut deletes_with_records) {
                Ok(()) => {
                    seen.acknowledged += 1;
                    acked = dump(&store);
                }
                Err(refused) => break refused,
            }
        };
        assert!(
            disk.is_off(),
            "seed {seed}, cut {cut}: refused with the power on"
        );
        // The process is gone: nothing of it may reach the disk after the restart.
        let _ = store.close(Duration::from_secs(5));
        // Nothing written since the last sync survives, or all of it (the process died before
        // its sync returned), or a part, torn at a 4 KiB boundary.
        let pieces = disk.unsynced_pieces();
        let kept = match rng.below(3) {
            0 => 0,
            1 => pieces,
            _ => rng.below(pieces as usize + 1) as u64,
        };
        seen.torn += usize::from(kept > 0 && kept < pieces);
        disk.restart(kept);
        store = open(&disk);
        let now = dump(&store);
        let (audit_then, audit_now) = (&acked["audit"], &now["audit"]);
        assert!(
            audit_then.iter().all(|(k, v)| audit_now.get(k) == Some(v)),
            "seed {seed}, cut {cut}: an acknowledged audit entry is gone"
        );
        // A write leaves one audit entry per change: two for a message (the message, and
        // its conversation's update), one otherwise.
        match audit_now.len() - audit_then.len() {
            0 => {
                for (table, entries) in &acked {
                    assert!(
                        now[table] == *entries,
                        "seed {seed}, cut {cut} (step {n}, {kept} of {pieces} pieces kept): \
                         table {table} is not as acknowledged"
                    );
                }
            }
            1 | 2 => {
                model.adopt(&store, refused.project.as_deref());
                acked = now;
                seen.made_anyway += 1;
            }
            more => panic!("seed {seed}, cut {cut}: {more} audit entries from one write"),
        }
        check(&store, &model, n);
        seen.cuts += 1;
    }
    store.close(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_power_cut_at_a_random_point_loses_nothing_acknowledged_and_leaves_nothing_half_made() {
    if skipped_on_postgres(SIMULATED_DISK) {
        return;
    }
    let started = Instant::now();
    let runs: Vec<_> = SEEDS
        .into_iter()
        .map(|seed| std::thread::spawn(move || run(seed, CUTS / SEEDS.len())))
        .collect();
    let mut total = Seen::default();
    for r in runs {
        match r.join() {
            Ok(seen) => {
                total.cuts += seen.cuts;
                total.made_anyway += seen.made_anyway;
                total.torn += seen.torn;
                total.acknowledged += seen.acknowledged;
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    assert_eq!(total.cuts, CUTS);
    // Both outcomes of a write in flight, and torn restarts, were met.
    assert!(total.made_anyway > 0, "{total:?}");
    assert!(total.made_anyway < total.cuts, "{total:?}");
    assert!(total.torn > 0, "{total:?}");
    eprintln!(
        "crash simulation: {} power cuts, {} acknowledged writes, {} refused writes made \
         anyway, {} torn restarts, in {:.1} s",
        total.cuts,
        total.acknowledged,
        total.made_anyway,
        total.torn,
        started.elapsed().as_secs_f64()
    );
}

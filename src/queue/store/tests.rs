use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::address::{Address, ReversePath};
use crate::policy::Mode;
use crate::queue::State;
use crate::smtp::{Content, Dsn, Envelope};

fn entry(id: &str) -> Entry {
    let envelope = Envelope {
        sender: ReversePath::parse("alice@example.org").unwrap(),
        recipients: vec![
            Address::parse("bob@example.net").unwrap(),
            Address::parse("carol@example.com").unwrap(),
        ],
        content: Content::default(),
        size: Some(17),
        dsn: Dsn::default(),
    };
    Entry::new(
        id.into(),
        1000,
        &envelope,
        Mode::Require,
        "--require-tls".into(),
    )
}

fn queue() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::at(dir.path());
    queue.create_private().unwrap();
    (dir, queue)
}

const MESSAGE: &[u8] = b"Subject: hi\n\nbody\n";

// covers: FAIL3
#[test]
fn a_dropped_message_is_taken_in_and_reads_back_whole() {
    let (_dir, queue) = queue();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    assert!(queue.maildrop_dir().join("00000000000000000AA1").is_file());
    // Nothing half-written is left beside it.
    assert_eq!(fs::read_dir(queue.maildrop_dir()).unwrap().count(), 1);
    let rejected = queue.import(2000).unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert!(!queue.maildrop_dir().join("00000000000000000AA1").exists());
    assert_eq!(
        queue.ids().unwrap(),
        vec!["00000000000000000AA1".to_string()]
    );
    let locked = queue.lock("00000000000000000AA1").unwrap().unwrap();
    assert_eq!(locked.entry, entry("00000000000000000AA1"));
    let mut message = Vec::new();
    locked.message().unwrap().read_to_end(&mut message).unwrap();
    assert_eq!(message, MESSAGE);
}

// covers: FAIL3
#[test]
fn a_locked_entry_is_not_handed_to_a_second_runner() {
    let (_dir, queue) = queue();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    queue.import(2000).unwrap();
    let first = queue.lock("00000000000000000AA1").unwrap();
    assert!(first.is_some());
    assert!(queue.lock("00000000000000000AA1").unwrap().is_none());
    drop(first);
    assert!(queue.lock("00000000000000000AA1").unwrap().is_some());
}

// covers: FAIL3, FAIL8
#[test]
fn a_saved_state_wins_and_a_finished_entry_is_removed() {
    let (_dir, queue) = queue();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    queue.import(2000).unwrap();
    let mut locked = queue.lock("00000000000000000AA1").unwrap().unwrap();
    locked.entry.recipients[0].state = State::Delivered;
    locked.save().unwrap();
    drop(locked);
    let mut locked = queue.lock("00000000000000000AA1").unwrap().unwrap();
    assert_eq!(locked.entry.recipients[0].state, State::Delivered);
    assert_eq!(locked.entry.recipients[1].state, State::Pending);
    locked.entry.recipients[1].state = State::Failed;
    locked.save().unwrap();
    drop(locked);
    assert!(queue.ids().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(queue.entries_dir())
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count(),
        0
    );
}

// covers: FAIL3
#[test]
fn a_removed_entry_held_open_by_a_late_runner_is_not_delivered_again() {
    let (_dir, queue) = queue();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    queue.import(2000).unwrap();
    let mut first = queue.lock("00000000000000000AA1").unwrap().unwrap();
    // The second runner opened the file before the first removed it.
    let late = File::open(queue.entries_dir().join("00000000000000000AA1")).unwrap();
    first.remove().unwrap();
    drop(first);
    late.try_lock().unwrap();
    assert_eq!(late.metadata().unwrap().nlink(), 0);
    assert!(queue.lock("00000000000000000AA1").unwrap().is_none());
}

// covers: FAIL3
#[test]
fn an_import_interrupted_after_copying_is_finished_without_a_duplicate() {
    let (_dir, queue) = queue();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    // The state a crash between the copy and the removal of the drop leaves.
    let dropped = fs::read(queue.maildrop_dir().join("00000000000000000AA1")).unwrap();
    fs::write(
        queue.entries_dir().join("00000000000000000AA1.new"),
        &dropped,
    )
    .unwrap();
    queue.import(2000).unwrap();
    assert_eq!(
        queue.ids().unwrap(),
        vec!["00000000000000000AA1".to_string()]
    );
    assert!(!queue.maildrop_dir().join("00000000000000000AA1").exists());
    assert!(
        !queue
            .entries_dir()
            .join("00000000000000000AA1.new")
            .exists()
    );
    // A drop whose entry exists already is only removed.
    fs::write(queue.maildrop_dir().join("00000000000000000AA1"), &dropped).unwrap();
    queue.import(2000).unwrap();
    assert_eq!(
        queue.ids().unwrap(),
        vec!["00000000000000000AA1".to_string()]
    );
    assert!(!queue.maildrop_dir().join("00000000000000000AA1").exists());
}

#[test]
fn dropped_files_that_are_not_entries_are_left_and_reported() {
    let (_dir, queue) = queue();
    let drop = queue.maildrop_dir();
    fs::write(drop.join("BAD1"), b"not json\n").unwrap();
    fs::write(drop.join("name.with.dots"), b"x").unwrap();
    let other = entry("OTHER");
    let mut bytes = other.to_line();
    bytes.extend_from_slice(MESSAGE);
    fs::write(drop.join("MISMATCH"), &bytes).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", drop.join("LINK1")).unwrap();
    fs::write(drop.join("HARD1"), &bytes).unwrap();
    fs::hard_link(drop.join("HARD1"), drop.join("HARD2")).unwrap();
    let rejected = queue.import(2000).unwrap();
    let mut names: Vec<String> = rejected
        .iter()
        .map(|r| r.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "BAD1",
            "HARD1",
            "HARD2",
            "LINK1",
            "MISMATCH",
            "name.with.dots"
        ]
    );
    assert!(queue.ids().unwrap().is_empty());
    assert!(drop.join("BAD1").exists());
}

#[test]
fn stale_temporary_files_and_orphaned_states_are_tidied() {
    let (_dir, queue) = queue();
    fs::write(queue.maildrop_dir().join(".X.tmp"), b"half").unwrap();
    fs::write(queue.entries_dir().join("GONE.state"), b"{}").unwrap();
    queue.import(fault::now()).unwrap();
    assert!(
        queue.maildrop_dir().join(".X.tmp").exists(),
        "a fresh one is a writer at work"
    );
    queue.import(fault::now() + 2 * STALE_TMP_SECS).unwrap();
    assert!(!queue.maildrop_dir().join(".X.tmp").exists());
    queue.tidy(fault::now()).unwrap();
    assert!(!queue.entries_dir().join("GONE.state").exists());
}

#[test]
fn a_notification_made_twice_is_made_once() {
    let (_dir, queue) = queue();
    let mut bounce = entry("00000000000000000AA1-B1");
    bounce.sender = String::new();
    bounce.bounce = true;
    assert!(queue.create(&bounce, b"report").unwrap());
    assert!(!queue.create(&bounce, b"other").unwrap());
    let locked = queue.lock("00000000000000000AA1-B1").unwrap().unwrap();
    assert_eq!(locked.message_prefix(100).unwrap(), b"report");
}

#[test]
fn the_listing_shows_dropped_and_taken_entries_oldest_first() {
    let (_dir, queue) = queue();
    let mut older = entry("00000000000000000BB2");
    older.created = 10;
    queue.drop_message(&older, &mut &MESSAGE[..]).unwrap();
    queue.import(2000).unwrap();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    let held = queue.lock("00000000000000000BB2").unwrap().unwrap();
    let (listed, problems) = queue.list().unwrap();
    assert!(problems.is_empty());
    let shown: Vec<(&str, bool)> = listed
        .iter()
        .map(|l| (l.entry.id.as_str(), l.dropped))
        .collect();
    assert_eq!(
        shown,
        [
            ("00000000000000000BB2", false),
            ("00000000000000000AA1", true)
        ]
    );
    // Listing took no lock: a runner is never made to skip an entry.
    drop(held);
    assert!(queue.lock("00000000000000000BB2").unwrap().is_some());
}

#[test]
fn a_drop_is_private_to_its_owner_or_shared_with_a_set_group_id_maildrop() {
    let (_dir, queue) = queue();
    let mode = |id: &str| {
        fs::metadata(queue.maildrop_dir().join(id))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    assert_eq!(mode("00000000000000000AA1"), 0o600);
    fs::set_permissions(queue.maildrop_dir(), fs::Permissions::from_mode(0o3733)).unwrap();
    queue
        .drop_message(&entry("00000000000000000BB2"), &mut &MESSAGE[..])
        .unwrap();
    assert_eq!(mode("00000000000000000BB2"), 0o640);
}

#[test]
fn a_fifo_or_a_link_in_the_maildrop_is_neither_read_nor_waited_for() {
    let (_dir, queue) = queue();
    let fifo = queue.maildrop_dir().join("00000000000000000FF0");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/etc/passwd",
        queue.maildrop_dir().join("00000000000000000FF1"),
    )
    .unwrap();
    let (listed, problems) = queue.list().unwrap();
    assert!(listed.is_empty());
    assert_eq!(problems.len(), 2, "{problems:?}");
    let rejected = queue.import(2000).unwrap();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
}

#[test]
fn an_entry_half_taken_in_is_listed_not_hidden() {
    let (_dir, queue) = queue();
    queue
        .drop_message(&entry("00000000000000000AA1"), &mut &MESSAGE[..])
        .unwrap();
    // A copy of another user's drop, complete, not yet renamed into place.
    let dropped = fs::read(queue.maildrop_dir().join("00000000000000000AA1")).unwrap();
    fs::remove_file(queue.maildrop_dir().join("00000000000000000AA1")).unwrap();
    fs::write(
        queue.entries_dir().join("00000000000000000AA1.new"),
        dropped,
    )
    .unwrap();
    let (listed, problems) = queue.list().unwrap();
    assert!(problems.is_empty());
    assert_eq!(listed.len(), 1);
    assert!(listed[0].dropped);
}

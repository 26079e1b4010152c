//! The SQLite checkpointer: a thread of its own with its own connection that copies the WAL back
//! into the database file a few times a second, so that the writers do not.
//!
//! Without it, the connection whose commit takes the WAL over `wal_autocheckpoint` pages copies
//! the whole WAL back and syncs both files before it returns. That connection is nearly always
//! the hold writer, and every hold queued behind it waited for the copy. A `PASSIVE` checkpoint
//! takes no lock that a writer needs, so here it runs beside them.
//!
//! Under writes that never pause, though, a checkpoint beside them never finds the whole WAL
//! copied (new frames arrive while it copies), and the WAL starts over from its beginning only
//! once it has all been copied: it would grow for as long as the writes go on. So once the WAL
//! is over [`RESTART_FRAMES`], this thread follows its passive checkpoint with a `RESTART` one,
//! which waits for the write lock, copies what is left (little: the passive one copied the
//! rest), and lets the next writer start the WAL over. The writers keep their own
//! `wal_autocheckpoint` as a backstop should this thread fail.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the WAL is copied back.
const INTERVAL: Duration = Duration::from_millis(50);
/// The WAL's length, in pages, from which a checkpoint also starts it over (16 MiB of 4 KiB
/// pages; the writers' backstop is twice that).
const RESTART_FRAMES: i64 = 4000;
/// How long a `RESTART` checkpoint waits for the write lock and for readers of the old WAL
/// before it gives up until the next round.
const RESTART_WAIT: Duration = Duration::from_millis(200);

/// The handle of the checkpointer thread; the thread ends when the handle is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Opens a connection to the database file at `path` (which must exist and be in WAL mode)
    /// and starts the thread.
    pub(crate) fn start(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // NORMAL: a checkpoint syncs the WAL before it copies and the database after.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA journal_size_limit = {};",
            crate::WAL_FILE_LIMIT_BYTES
        ))?;
        conn.busy_timeout(RESTART_WAIT)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    match checkpoint(&conn) {
                        Ok(()) if failing => {
                            tracing::info!("SQLite WAL checkpoints work again");
                            failing = false;
                        }
                        Ok(()) => {}
                        // Logged once per run of failures: the writers' own checkpoints still
                        // keep the WAL bounded meanwhile.
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "an SQLite WAL checkpoint failed");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

/// One round: a `PASSIVE` checkpoint, which copies back the WAL frames that no reader still
/// needs, and if the WAL is long, a `RESTART` one after it.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    if wal_checkpoint(conn, "PASSIVE")? >= RESTART_FRAMES {
        // Busy (the write lock or a reader of the old WAL not had in time) is no error: the
        // next round tries again.
        wal_checkpoint(conn, "RESTART")?;
    }
    Ok(())
}

/// `PRAGMA wal_checkpoint(mode)`; returns how many frames the WAL had.
fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    // SQLite answers with a row: busy, frames in the WAL, frames copied back.
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn it_copies_the_wal_back_while_the_writer_keeps_its_connection() {
        let path = std::env::temp_dir().join(format!("checkpointer-{}.db", uuid::Uuid::now_v7()));
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT NOT NULL);",
            )
            .unwrap();
        writer
            .execute_batch(
                "BEGIN; WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k \
                 WHERE n < 5000) INSERT INTO t SELECT n, printf('%0100d', n) FROM k; COMMIT;",
            )
            .unwrap();
        // 5000 rows of over 100 bytes each.
        const COPIED: u64 = 500 * 1024;
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        assert!(
            before < 64 * 1024,
            "the rows should be in the WAL only, the file is {before} B"
        );

        let checkpointer = Checkpointer::start(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The file grows while the checkpoint copies, page by page: wait for all of it.
        while size() < COPIED && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = size();
        drop(checkpointer);
        drop(writer);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(
            after >= COPIED,
            "the WAL was not copied back: {before} B, then {after} B"
        );
    }
}

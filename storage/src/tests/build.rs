//! The bundled SQLite is built as `.cargo/config.toml` asks.

/// `PRAGMA compile_options` of the linked SQLite (one library: rusqlite and sqlx share it).
fn compile_options() -> Vec<String> {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = db.prepare("PRAGMA compile_options").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A query thread must not wait on a mutex that a lowered rollout thread may hold: with
/// `ENABLE_MEMORY_MANAGEMENT` every page fetch of every connection takes one LRU mutex,
/// and with memory statistics on every `sqlite3_malloc` takes another.
#[test]
fn sqlite_has_no_process_wide_page_cache_or_memory_statistics_mutex() {
    let options = compile_options();
    assert!(
        options.iter().any(|o| o == "THREADSAFE=1"),
        "options read: {options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "built with one page-cache LRU for every connection (is .cargo/config.toml's \
         LIBSQLITE3_FLAGS in effect?): {options:?}"
    );
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "built with memory statistics on: {options:?}"
    );
}

//! Rebuilds the crate when a control-plane migration is added or changed: `sqlx::migrate!`
//! embeds the files at compile time but does not watch the folders for new ones.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

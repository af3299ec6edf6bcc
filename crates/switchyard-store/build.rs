//! `sqlx::migrate!` embeds `migrations/` at compile time, but a proc macro cannot ask Cargo to
//! watch a directory: without this, adding a migration file would not rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}

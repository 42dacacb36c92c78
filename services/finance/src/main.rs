//! `fusion-finance [serve|migrate]`.

fn main() {}

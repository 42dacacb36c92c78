# Thin wrappers over cargo and scripts; every recipe is also runnable by hand.

# The whole stack: database, migrations, every service, the edge, demo data.
up:
    cargo run --release --bin fusion-stack

# Run every test against a real PostgreSQL (the README's test command).
test:
    cargo test --workspace --locked

# Formatting, lints and proto lint, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cd proto && buf lint

# Cut a new API release baseline for `buf breaking` (only for a deliberate breaking
# release: every client must be told).
proto-release:
    cd proto && buf build --exclude-source-info -o release/v1.binpb

# Direct vs through-the-edge load test; results go in docs/BENCHMARKS.md.
bench seconds="5":
    cargo run --release -p fusion-e2e --bin fusion-bench -- {{seconds}}

# CreateInvoice with 10 lines, direct and through the edge, at 1 and 16 streams.
bench-finance seconds="5":
    cargo run --release -p fusion-e2e --bin fusion-bench-finance -- {{seconds}}

# CRM reads through the edge beside pgbench, ImportLeads beside COPY, crm's memory.
bench-crm seconds="10":
    cargo build --release --bin fusion-crm
    cargo run --release -p fusion-e2e --bin fusion-bench-crm -- {{seconds}}

# 300 invoices pushed to a fake Xero (SyncInvoiceToXero) at 600/min and at a scaled
# 60/min: no 429, within 10 % of the best time the limits allow.
bench-xero:
    cargo run --release -p fusion-e2e --bin fusion-bench-xero

# Everything CI does.
ci:
    bash .ci/run

# Thin wrappers over cargo and scripts; every recipe is also runnable by hand.

# Run every test against a real PostgreSQL (the README's test command).
test:
    cargo test --workspace --locked

# Formatting, lints and proto lint, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cd proto && buf lint

# Everything CI does.
ci:
    bash .ci/run

# Apply the identity schema's migrations (owner role) and serve identity locally.
identity:
    cargo run --bin fusion-identity

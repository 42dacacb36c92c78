//! finance's API tests: one binary, against real PostgreSQL and the real services.

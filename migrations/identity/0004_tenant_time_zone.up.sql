-- Each tenant has an IANA time zone (e.g. 'Australia/Sydney'): default dates ("today",
-- a deal's close date) are computed in it, and access tokens carry it. The service
-- checks the name against the tz database (chrono-tz) on every write. Tenants record no
-- country to derive a zone from, so existing tenants, and new ones created without a
-- zone, get 'UTC'.
ALTER TABLE identity.tenants
    ADD COLUMN time_zone varchar(64) NOT NULL DEFAULT 'UTC' CHECK (time_zone <> '');

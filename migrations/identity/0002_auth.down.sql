DROP TABLE IF EXISTS identity.login_throttle;
DROP TABLE IF EXISTS identity.signing_keys;
DROP TABLE IF EXISTS identity.refresh_tokens;

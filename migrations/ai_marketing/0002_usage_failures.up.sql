-- Calls to the model that failed (provider error, rate limit, timeout, dropped
-- stream), counted beside the replies in the same usage row: a failed call stores no
-- reply and no tokens the provider did not report, but it is recorded.
ALTER TABLE ai_marketing.ai_usage
    ADD COLUMN failure_count bigint NOT NULL DEFAULT 0 CHECK (failure_count >= 0);

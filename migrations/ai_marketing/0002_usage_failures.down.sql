ALTER TABLE ai_marketing.ai_usage DROP COLUMN IF EXISTS failure_count;

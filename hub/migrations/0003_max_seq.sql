-- Schema 3: the highest seq stored per terminal, kept with the watermark, so that ingest knows
-- without a query whether records arrived ahead of a gap.
ALTER TABLE devices ADD COLUMN max_seq BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET max_seq = (SELECT coalesce(max(seq), 0) FROM ratings WHERE ratings.device = devices.id);

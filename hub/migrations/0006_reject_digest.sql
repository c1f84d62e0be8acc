-- Schema 6: the SHA-256 of each refused message. The broker sends a retained message again at
-- every subscription; one refused before is then counted, not recorded and logged again.
ALTER TABLE rejects ADD COLUMN digest TEXT;
CREATE INDEX rejects_digest ON rejects (digest);

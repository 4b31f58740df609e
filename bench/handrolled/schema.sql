-- The table queue everybody writes: one row per item; a lease is an UPDATE of vt.
SET client_min_messages = warning;
-- bench/run runs this before every measured run, so each starts from a fresh table.
DROP TABLE IF EXISTS handrolled;
CREATE TABLE handrolled (
  id      bigserial PRIMARY KEY,
  payload jsonb NOT NULL,
  vt      timestamptz NOT NULL DEFAULT now(),
  read_ct int NOT NULL DEFAULT 0);

-- Consumer groups (docs/protocol.md, section 6), shared by every broker on
-- the database. annal_groups.version moves (from annal_group_versions, so
-- that a group made again never takes an old number) with every change of
-- a group's state; a broker whose copy is older loads it again. Leases are
-- UNLOGGED (a crash of PostgreSQL may drop them: leased events are then
-- ready again), with the session of the broker that took them (pid and
-- backend_start), so that a lease ends with its broker. Sequences, starts
-- and floors are numeric(20): annal's sequences are unsigned 64-bit.
CREATE SEQUENCE annal_group_versions;
CREATE TABLE annal_groups (name text PRIMARY KEY, prefix text NOT NULL, types text[],
  start numeric(20) NOT NULL, unordered boolean NOT NULL, from_end boolean NOT NULL,
  ack_timeout_ms bigint NOT NULL, max_deliveries bigint NOT NULL, floor numeric(20) NOT NULL,
  version bigint NOT NULL DEFAULT nextval('annal_group_versions'));
CREATE TABLE annal_group_marks (name text NOT NULL REFERENCES annal_groups ON DELETE CASCADE,
  sequence numeric(20) NOT NULL, mark smallint NOT NULL, delivery bigint NOT NULL, reason bytea,
  PRIMARY KEY (name, sequence));
CREATE UNLOGGED TABLE annal_group_leases (name text NOT NULL, sequence numeric(20) NOT NULL,
  consumer text NOT NULL, deadline bigint NOT NULL, delivery bigint NOT NULL,
  pid integer NOT NULL, started timestamptz, PRIMARY KEY (name, sequence));

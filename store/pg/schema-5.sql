-- Retention (docs/protocol.md, section 7): one policy per aggregate, each
-- limit NULL for none. Reads leave out what a policy removes at once; the
-- sweep deletes it in steps.
CREATE TABLE annal_retention (aggregate_id text PRIMARY KEY, max_count bigint,
  max_age_s bigint);

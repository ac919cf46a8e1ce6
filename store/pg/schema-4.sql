-- Deletion (docs/protocol.md, section 7): an aggregate deleted for good
-- (gone) takes no more appends (annal_append's status 4); annal_head.removed
-- counts the events removed, so that status counts the events left.
ALTER TABLE annal_aggregates ADD COLUMN gone boolean NOT NULL DEFAULT false;
ALTER TABLE annal_head ADD COLUMN removed bigint NOT NULL DEFAULT 0;
CREATE OR REPLACE FUNCTION annal_append(p_agg text, p_expect int, p_expected bigint, h bigint,  rec bigint,  p_ids uuid[], p_client boolean[], p_types text[], p_data bytea[], p_meta bytea[],  OUT status int, OUT first_seq bigint, OUT last_seq bigint, OUT version bigint,  OUT recorded bigint, OUT detail text) LANGUAGE plpgsql AS $f$
DECLARE n int := cardinality(p_ids); cur bigint; s bigint;
  e annal_events; other uuid; k int;
BEGIN
  IF EXISTS (SELECT 1 FROM annal_aggregates a WHERE a.aggregate_id = p_agg AND a.gone) THEN
    status := 4; RETURN;
  END IF;
  FOR k IN 1..n LOOP
    CONTINUE WHEN NOT p_client[k];
    SELECT sequence INTO s FROM annal_events WHERE event_id = p_ids[k];
    CONTINUE WHEN NOT FOUND;
    status := 3;
    IF k > 1 THEN
      detail := format('events[%s]: event_id %s is already stored; a batch is either a '
        'retry of an earlier batch or all new events', k - 1, p_ids[k]); RETURN;
    END IF;
    SELECT * INTO e FROM annal_events WHERE sequence = s;
    IF e.aggregate_id <> p_agg THEN
      detail := format('event_id %s is already stored for another aggregate', p_ids[1]);
      RETURN;
    END IF;
    IF n > 1 AND (e.append_index <> 0 OR e.append_size <> n) THEN
      detail := format('event_id %s is already stored, but not as the first of a batch '
        'of %s events: a retry must resend the same batch', p_ids[1], n); RETURN;
    END IF;
    last_seq := s;
    FOR k IN 2..n LOOP
      SELECT a.sequence, a.event_id INTO s, other FROM annal_events a
        WHERE a.aggregate_id = p_agg AND a.version = e.version + k - 1;
      IF NOT FOUND OR NOT p_client[k] OR other <> p_ids[k] THEN
        detail := format('the batch''s first event_id is already stored but events[%s] '
          'does not match the stored batch: a retry must resend the same events', k - 1);
        RETURN;
      END IF;
      last_seq := s;
    END LOOP;
    status := 1; first_seq := e.sequence; version := e.version + n - 1;
    recorded := e.recorded_at; RETURN;
  END LOOP;
  SELECT a.version INTO cur FROM annal_aggregates a WHERE a.aggregate_id = p_agg;
  cur := coalesce(cur, 0);
  IF (p_expect = 1 AND cur <> p_expected) OR (p_expect = 2 AND cur = 0) THEN
    status := 2; version := cur; RETURN;
  END IF;
  INSERT INTO annal_events SELECT h + i, p_ids[i], p_agg, cur + i, p_types[i], p_data[i],
    p_meta[i], rec, n, i - 1 FROM generate_series(1, n) i;
  INSERT INTO annal_aggregates VALUES (p_agg, cur + n)
    ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version;
  status := 0; first_seq := h + 1; last_seq := h + n; version := cur + n; recorded := rec;
END $f$;

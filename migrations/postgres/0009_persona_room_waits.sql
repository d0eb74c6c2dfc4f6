-- Wake-ups for a persona's room (docs/ARCHITECTURE.md, rules 13 and 15): a claim that took
-- less than it asked because the persona's concurrency is used up by other claimants (room 0
-- with ready tasks left) records the persona here, in its transaction, under the persona's
-- lock (src/store/postgres/claims.ts). A settle that ends a lease of the persona
-- (roster_room_freed, called by PgTransactions before its COMMIT) deletes the row and
-- NOTIFYs the store's channel with the persona, so the claimant that found no room claims at
-- once instead of at its next poll. The table is empty while nobody waits: a settle then
-- costs one primary-key probe and no NOTIFY.
CREATE TABLE persona_room_waits (persona_id text PRIMARY KEY);

-- Called once per settle transaction with the personas whose leases it ended. A claim of the
-- persona in flight holds the persona's lock (roster_persona_room) from its count to its
-- commit: its wait, if it records one, is not visible yet, so the settle NOTIFYs anyway.
-- Otherwise the settle holds the lock to its own commit, so a claim that starts later counts
-- the freed lease, and a wait recorded before is visible and taken. Never waits for a lock.
-- Returns the personas it woke (NOTIFY payload: their ids, space-separated).
CREATE FUNCTION roster_room_freed(p_personas text[], p_channel text) RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  p text;
  woken text[] := '{}';
BEGIN
  FOREACH p IN ARRAY p_personas LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM personas WHERE id = p AND (config::jsonb ->> 'concurrency') IS NOT NULL);
    IF NOT pg_try_advisory_xact_lock(hashtextextended('roster:persona:' || p, 0)) THEN
      woken := woken || p;
    ELSE
      DELETE FROM persona_room_waits WHERE persona_id = p;
      IF FOUND THEN
        woken := woken || p;
      END IF;
    END IF;
  END LOOP;
  IF cardinality(woken) > 0 THEN
    PERFORM pg_notify(p_channel, array_to_string(woken, ' '));
  END IF;
  RETURN woken;
END $$;

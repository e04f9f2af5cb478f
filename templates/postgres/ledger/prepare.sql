{# The ledger: one row per resource per apply, in the target's `fleetform` schema.
   A schema or table someone else prepared is refused, never adopted:
   checked before and again after (a schema created meanwhile). #}
{% include "templates/postgres/ledger/refuse.sql" %}
{# Only when it is missing: CREATE SCHEMA IF NOT EXISTS checks CREATE on
   the database before it looks, which a login given a schema of its own
   (CREATE SCHEMA fleetform AUTHORIZATION it) does not have. #}
DO $prepare$
BEGIN
    IF to_regnamespace('fleetform') IS NULL THEN
        CREATE SCHEMA fleetform;
    END IF;
END
$prepare$;
COMMENT ON SCHEMA fleetform IS 'fleetform ledger: what was applied here, from which commit, by whom, with which result';
CREATE TABLE IF NOT EXISTS fleetform.ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    environment text NOT NULL,
    commit text,
    actor text NOT NULL,
    resource text NOT NULL,
    action text NOT NULL,
    result text NOT NULL,
    desired_fingerprint text NOT NULL,
    observed_fingerprint text,
    observed_items jsonb,
    message text,
    script text
);
CREATE INDEX IF NOT EXISTS ledger_resource ON fleetform.ledger (resource, id);
{# Added later: what was applied, so that what the manifests drop can be
   pruned (kinds whose objects carry no ownership marker). #}
ALTER TABLE fleetform.ledger ADD COLUMN IF NOT EXISTS kind text;
ALTER TABLE fleetform.ledger ADD COLUMN IF NOT EXISTS database text;
ALTER TABLE fleetform.ledger ADD COLUMN IF NOT EXISTS spec jsonb;
{% include "templates/postgres/ledger/refuse.sql" %}

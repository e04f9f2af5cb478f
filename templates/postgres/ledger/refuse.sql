{# Fails when the ledger is not to be trusted (untrusted.sql says why). #}
DO $refuse$
DECLARE
    reason text := {% include "templates/postgres/ledger/untrusted.sql" %};
BEGIN
    IF reason IS NOT NULL THEN
        RAISE EXCEPTION 'fleetform will not use this ledger: %', reason;
    END IF;
END
$refuse$;

INSERT INTO fleetform.ledger
    (run_id, environment, commit, actor, resource, action, result,
     desired_fingerprint, observed_fingerprint, observed_items, message, script, kind, database, spec)
VALUES
    ({{ run_id }}, {{ environment }}, {{ commit }}, {{ actor }}, {{ resource }}, {{ action }}, {{ result }},
     {{ desired_fingerprint }}, {{ observed_fingerprint }}, {{ observed_items }}::jsonb, {{ message }}, {{ script }},
     {{ kind }}, {{ database }}, {{ spec }}::jsonb);

INSERT INTO fleetform.ledger
    (run_id, environment, commit, actor, resource, action, result,
     desired_fingerprint, observed_fingerprint, observed_items, message, script)
VALUES
    ({{ run_id }}, {{ environment }}, {{ commit }}, {{ actor }}, {{ resource }}, {{ action }}, {{ result }},
     {{ desired_fingerprint }}, {{ observed_fingerprint }}, {{ observed_items }}::jsonb, {{ message }}, {{ script }});

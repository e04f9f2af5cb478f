INSERT INTO fleetform.ledger
    (run_id, environment, commit, actor, resource, action, result,
     desired_fingerprint, observed_fingerprint, message, script)
VALUES
    ({{ run_id }}, {{ environment }}, {{ commit }}, {{ actor }}, {{ resource }}, {{ action }}, {{ result }},
     {{ desired_fingerprint }}, {{ observed_fingerprint }}, {{ message }}, {{ script }});

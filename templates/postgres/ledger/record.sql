INSERT INTO fleetform.ledger
    (run_id, environment, commit, actor, resource, action, result,
     desired_fingerprint, observed_fingerprint, observed_items, message, script, kind, database, spec)
VALUES
    ({{ run_id }}, {{ environment }}, {{ commit }}, {{ actor }}, {{ resource }}, {{ action }}, {{ result }},
     {{ desired_fingerprint }}, {{ observed_fingerprint }}, {{ observed_items }}::jsonb, {{ message }}, {{ script }},
     {{ kind }}, {{ database }},
{% if spec is not none and carry_items %}
     {# Items applied before and dropped from the manifests stay recorded
        (owned) until a prune resets them. #}
     {{ spec }}::jsonb || jsonb_build_object({{ carry_items }},
         (coalesce((SELECT l.spec -> {{ carry_items }} FROM fleetform.ledger l
                    WHERE l.resource = {{ resource }} AND l.environment = {{ environment }}
                      AND l.result = 'converged'
                    ORDER BY l.id DESC LIMIT 1), '{}'::jsonb)
          - ARRAY[{{ dropped_items|literal_list }}]::text[])
         || ({{ spec }}::jsonb -> {{ carry_items }})));
{% else %}
     {{ spec }}::jsonb);
{% endif %}

{# The last converged apply of each resource of an environment; an empty list
   when there is no ledger yet. #}
{% if ledger_exists %}
SELECT coalesce(json_agg(row_to_json(latest)), '[]'::json)
FROM (
    SELECT DISTINCT ON (resource)
           resource, action, result, desired_fingerprint, observed_fingerprint, observed_items,
           commit, actor, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS recorded_at
    FROM fleetform.ledger
    WHERE environment = {{ environment }} AND result = 'converged'
    ORDER BY resource, id DESC
) latest
{% else %}
SELECT '[]'::json
{% endif %}

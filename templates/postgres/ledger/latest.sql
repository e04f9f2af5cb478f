{# The last converged apply of each resource of an environment; an empty list
   when there is no ledger yet. Whole rows without the bulky columns, so that
   a ledger made by an older fleetform (fewer columns) still reads. #}
{% if ledger_exists %}
SELECT coalesce(json_agg(to_jsonb(l) - ARRAY['script', 'message', 'run_id', 'recorded_at']
                         || jsonb_build_object('recorded_at', to_char(l.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
                '[]'::json)
FROM fleetform.ledger l
WHERE l.id IN (
    SELECT DISTINCT ON (resource) id
    FROM fleetform.ledger
    WHERE environment = {{ environment }} AND result = 'converged'
    ORDER BY resource, id DESC
)
{% else %}
SELECT '[]'::json
{% endif %}

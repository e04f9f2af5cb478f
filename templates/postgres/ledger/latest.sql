{# The last converged apply of each resource of an environment, and the
   interrupted ones (below); an empty list when there is no ledger yet. Whole rows without the bulky columns, so that
   a ledger made by an older fleetform (fewer columns) still reads. #}
{% if ledger_exists %}
SELECT coalesce(json_agg(to_jsonb(l) - ARRAY['script', 'message', 'run_id', 'recorded_at']
                         || jsonb_build_object('recorded_at', to_char(l.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                               {# Whether this owner's apply created it: a marker
                                                  removed by hand is then put back. #}
                                               'created', EXISTS (SELECT FROM fleetform.ledger c
                                                                  WHERE c.resource = l.resource AND c.environment = l.environment
                                                                    AND c.result = 'converged' AND c.action IN ('create', 'replace')))),
                '[]'::json)
FROM fleetform.ledger l
WHERE l.id IN (
    SELECT DISTINCT ON (resource) id
    FROM fleetform.ledger
    WHERE environment = {{ environment }} AND result = 'converged'
    ORDER BY resource, id DESC
)
{# And, per resource, the newest `started` row that its run never followed
   with an outcome and no later converged row superseded: an interrupted
   apply was converging it. #}
OR l.id IN (
    SELECT DISTINCT ON (s.resource) s.id
    FROM fleetform.ledger s
    WHERE s.environment = {{ environment }} AND s.result = 'started'
      AND NOT EXISTS (SELECT FROM fleetform.ledger o
                      WHERE o.resource = s.resource AND o.run_id = s.run_id AND o.id > s.id)
      AND NOT EXISTS (SELECT FROM fleetform.ledger c
                      WHERE c.resource = s.resource AND c.environment = s.environment
                        AND c.result = 'converged' AND c.id > s.id)
    ORDER BY s.resource, s.id DESC
)
{% else %}
SELECT '[]'::json
{% endif %}

{# The default privileges set in the database (pg_default_acl), one object
   per owner, schema, type and grantee. #}
WITH entries AS (
    SELECT pg_get_userbyid(d.defaclrole) AS owner,
           CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE (SELECT nspname FROM pg_namespace WHERE oid = d.defaclnamespace) END AS schema,
           CASE d.defaclobjtype WHEN 'r' THEN 'table' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'function'
                                WHEN 'T' THEN 'type' WHEN 'n' THEN 'schema' END AS type,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS role,
           array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type) AS privileges,
           bool_and(a.is_grantable) AS grantable
    FROM pg_default_acl d, aclexplode(d.defaclacl) a
    WHERE a.grantee <> d.defaclrole
    GROUP BY d.defaclrole, d.defaclnamespace, d.defaclobjtype, a.grantee
)
SELECT coalesce(json_agg(json_build_object(
           'name', owner || '-' || coalesce(schema || '-', '') || type || '-' || role,
           'spec', json_strip_nulls(json_build_object(
               'owner', owner,
               'schema', schema,
               'objectType', type,
               'role', role,
               'privileges', to_json(privileges),
               'withGrantOption', grantable
           ))) ORDER BY owner, schema, type, role), '[]'::json)
FROM entries

{# Every role's and database's session defaults, one object per role and
   database, named after them. Roles and databases that no longer exist
   leave no entries (PostgreSQL removes them with the role or database). #}
SELECT coalesce(json_agg(json_build_object('name', defaults.name, 'spec', json_strip_nulls(json_build_object(
           'role', defaults.role,
           'database', defaults.database,
           'parameters', defaults.parameters
       ))) ORDER BY defaults.name), '[]'::json)
FROM (
    SELECT concat_ws('-in-', coalesce(r.rolname, 'all'), d.datname) AS name,
           r.rolname AS role,
           d.datname AS database,
           (SELECT json_object_agg(split_part(entry, '=', 1), substr(entry, strpos(entry, '=') + 1))
            FROM unnest(rs.setconfig) entry) AS parameters
    FROM pg_db_role_setting rs
    LEFT JOIN pg_roles r ON r.oid = rs.setrole
    LEFT JOIN pg_database d ON d.oid = rs.setdatabase
    WHERE (rs.setrole = 0 OR r.rolname IS NOT NULL) AND (rs.setdatabase = 0 OR d.datname IS NOT NULL)
      AND NOT (rs.setrole = 0 AND rs.setdatabase = 0)
) defaults

{# One row per role outside the pg_ roles. Passwords (their verifiers) are
   readable by superusers only; otherwise `passwordReadable` is false. The ownership marker is the last
   line of the role's comment; `comment` is reported without it. #}
SELECT coalesce(json_agg(row_to_json(roles) ORDER BY roles.identity), '[]'::json)
FROM (
    SELECT r.rolname AS identity,
           r.rolcanlogin AS login,
           r.rolsuper AS superuser,
           r.rolcreatedb AS "createDatabase",
           r.rolcreaterole AS "createRole",
           r.rolinherit AS inherit,
           r.rolreplication AS replication,
           r.rolbypassrls AS "bypassRowLevelSecurity",
           r.rolconnlimit AS "connectionLimit",
           CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN NULL
                ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END AS "validUntil",
{% if is_superuser %}
           a.rolpassword AS password,
           a.rolpassword AS "passwordVerifier",
           true AS "passwordReadable",
           {# An MD5 hash is replaced by a SCRAM verifier where the server hashes with SCRAM. #}
           current_setting('password_encryption') AS "passwordEncryption",
{% else %}
           NULL AS password,
           NULL AS "passwordVerifier",
           false AS "passwordReadable",
{% endif %}
           coalesce((SELECT json_agg(DISTINCT g.rolname)
                     FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                     WHERE m.member = r.oid), '[]'::json) AS "memberOf",
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_roles r
{% if is_superuser %}
    LEFT JOIN pg_authid a ON a.oid = r.oid
{% endif %}
    CROSS JOIN LATERAL (SELECT shobj_description(r.oid, 'pg_authid') AS text OFFSET 0) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    WHERE r.rolname !~ '^pg_'
) roles

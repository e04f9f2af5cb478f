{# One row per membership (group > member) among the wanted ones. Before
   PostgreSQL 16 a membership has only the admin option. #}
SELECT coalesce(json_agg(row_to_json(memberships) ORDER BY memberships.identity), '[]'::json)
FROM (
    SELECT g.rolname || ' > ' || m.rolname AS identity,
           bool_or(a.admin_option) AS admin
{% if server_version_num >= 160000 %}
           {# From 16, one membership may be granted by several grantors, each
              grant with its options; the member has an option when any grant
              gives it. #}
           , bool_or(a.inherit_option) AS inherit
           , bool_or(a.set_option) AS set
           , json_agg(json_build_object('grantor', pg_get_userbyid(a.grantor), 'admin', a.admin_option,
                                        'inherit', a.inherit_option, 'set', a.set_option)
                      ORDER BY pg_get_userbyid(a.grantor)) AS grants
{% endif %}
    FROM pg_auth_members a
    JOIN pg_roles g ON g.oid = a.roleid
    JOIN pg_roles m ON m.oid = a.member
    WHERE {% if names %}g.rolname || ' > ' || m.rolname IN ({{ names|literal_list }}){% else %}false{% endif %}

    GROUP BY g.rolname, m.rolname
) memberships

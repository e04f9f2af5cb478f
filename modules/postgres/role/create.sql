{# The password travels in this statement as its SCRAM verifier: keep it out
   of the server's log (statements, slow statements, failing statements). Only
   a superuser may change these settings; for others the server's own logging
   decides (docs/operations.md). #}
{% if ((desired.password is defined and desired.password is not none) or desired.passwordVerifier is defined) and is_superuser %}
SET LOCAL log_statement = 'none';
SET LOCAL log_min_duration_statement = -1;
SET LOCAL log_min_error_statement = 'panic';
{% endif %}
CREATE ROLE {{ name|ident }} WITH
    {%+ if desired.login %}LOGIN{% else %}NOLOGIN{% endif %}

    {%+ if desired.superuser %}SUPERUSER{% else %}NOSUPERUSER{% endif %}

    {%+ if desired.createDatabase %}CREATEDB{% else %}NOCREATEDB{% endif %}

    {%+ if desired.createRole %}CREATEROLE{% else %}NOCREATEROLE{% endif %}

    {%+ if desired.inherit %}INHERIT{% else %}NOINHERIT{% endif %}

    {%+ if desired.replication %}REPLICATION{% else %}NOREPLICATION{% endif %}

    {%+ if desired.bypassRowLevelSecurity %}BYPASSRLS{% else %}NOBYPASSRLS{% endif %}

    CONNECTION LIMIT {{ desired.connectionLimit }}
{% if desired.validUntil is defined %}
    VALID UNTIL {{ desired.validUntil }}
{% endif %}
{% if desired.password is defined %}
    PASSWORD {% if desired.password is none %}NULL{% else %}{{ desired.password }}{% endif %}

{% elif desired.passwordVerifier is defined %}
    PASSWORD {{ desired.passwordVerifier }}
{% endif %}
;
{% for group in desired.memberOf | default([]) %}
GRANT {{ group|ident }} TO {{ name|ident }};
{% endfor %}
COMMENT ON ROLE {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};

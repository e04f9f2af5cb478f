{# The password travels in this statement as its SCRAM verifier: keep it out
   of the server's log (statements, slow statements, failing statements). Only
   a superuser may change these settings; for others the server's own logging
   decides (docs/operations.md). #}
{% if (("password" in changed and desired.password is not none) or "passwordVerifier" in changed) and is_superuser %}
SET LOCAL log_statement = 'none';
SET LOCAL log_min_duration_statement = -1;
SET LOCAL log_min_error_statement = 'panic';
{% endif %}
{% if "login" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.login %}LOGIN{% else %}NOLOGIN{% endif %};
{% endif %}
{% if "superuser" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.superuser %}SUPERUSER{% else %}NOSUPERUSER{% endif %};
{% endif %}
{% if "createDatabase" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.createDatabase %}CREATEDB{% else %}NOCREATEDB{% endif %};
{% endif %}
{% if "createRole" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.createRole %}CREATEROLE{% else %}NOCREATEROLE{% endif %};
{% endif %}
{% if "inherit" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.inherit %}INHERIT{% else %}NOINHERIT{% endif %};
{% endif %}
{% if "replication" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.replication %}REPLICATION{% else %}NOREPLICATION{% endif %};
{% endif %}
{% if "bypassRowLevelSecurity" in changed %}
ALTER ROLE {{ name|ident }} WITH {% if desired.bypassRowLevelSecurity %}BYPASSRLS{% else %}NOBYPASSRLS{% endif %};
{% endif %}
{% if "connectionLimit" in changed %}
ALTER ROLE {{ name|ident }} WITH CONNECTION LIMIT {{ desired.connectionLimit }};
{% endif %}
{% if "validUntil" in changed %}
ALTER ROLE {{ name|ident }} WITH VALID UNTIL {{ desired.validUntil }};
{% endif %}
{% if "password" in changed %}
ALTER ROLE {{ name|ident }} WITH PASSWORD {% if desired.password is none %}NULL{% else %}{{ desired.password }}{% endif %};
{% endif %}
{% if "passwordVerifier" in changed %}
ALTER ROLE {{ name|ident }} WITH PASSWORD {{ desired.passwordVerifier }};
{% endif %}
{% if "memberOf" in changed %}
{% for group in set_changes.memberOf.added %}
GRANT {{ group|ident }} TO {{ name|ident }};
{% endfor %}
{% for group in set_changes.memberOf.removed %}
REVOKE {{ group|ident }} FROM {{ name|ident }};
{% endfor %}
{% endif %}
{% if "comment" in changed %}
COMMENT ON ROLE {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}

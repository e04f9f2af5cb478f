CREATE DATABASE {{ name|ident }} WITH
{% if desired.owner is defined %}
    OWNER {{ desired.owner|ident }}
{% endif %}
    TEMPLATE {{ desired.template|ident }}
    ENCODING {{ desired.encoding }}
{% if desired.lcCollate is defined %}
    LC_COLLATE {{ desired.lcCollate }}
{% endif %}
{% if desired.lcCtype is defined %}
    LC_CTYPE {{ desired.lcCtype }}
{% endif %}
{# LOCALE_PROVIDER exists from PostgreSQL 15; before, libc is the only one. #}
{% if desired.localeProvider is defined and (server_version_num >= 150000 or desired.localeProvider != "libc") %}
    LOCALE_PROVIDER {{ desired.localeProvider }}
{% endif %}
{% if desired.icuLocale is defined %}
    ICU_LOCALE {{ desired.icuLocale }}
{% endif %}
{% if desired.builtinLocale is defined %}
    BUILTIN_LOCALE {{ desired.builtinLocale }}
{% endif %}
{# Naming pg_default explicitly would need CREATE on it for a non-superuser. #}
{% if desired.tablespace is defined and desired.tablespace != "pg_default" %}
    TABLESPACE {{ desired.tablespace|ident }}
{% endif %}
    ALLOW_CONNECTIONS {{ desired.allowConnections }}
    CONNECTION LIMIT {{ desired.connectionLimit }}
    IS_TEMPLATE {{ desired.isTemplate }};
COMMENT ON DATABASE {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};

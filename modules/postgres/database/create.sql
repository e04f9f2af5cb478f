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
{% if desired.localeProvider is defined %}
    LOCALE_PROVIDER {{ desired.localeProvider }}
{% endif %}
{% if desired.icuLocale is defined %}
    ICU_LOCALE {{ desired.icuLocale }}
{% endif %}
    TABLESPACE {{ desired.tablespace|ident }}
    ALLOW_CONNECTIONS {{ desired.allowConnections }}
    CONNECTION LIMIT {{ desired.connectionLimit }}
    IS_TEMPLATE {{ desired.isTemplate }};
COMMENT ON DATABASE {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};

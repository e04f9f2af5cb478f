{# A default fleetform set that left the manifests (--prune): the role or
   database falls back to the server's value. #}
{% include "modules/postgres/role-settings/target.sql" %} RESET {{ observed.parameter|ident_path }};

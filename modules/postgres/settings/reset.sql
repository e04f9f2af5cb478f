{# A parameter fleetform wrote that left the manifests (--prune): back to
   what postgresql.conf says, while ALTER SYSTEM's value is still there. #}
{% if observed and observed.inAutoConf is not false %}
ALTER SYSTEM RESET {{ name|ident_path }};
{% endif %}

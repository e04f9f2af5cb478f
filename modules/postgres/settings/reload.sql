{% if spec.reloadAllowed %}
SELECT pg_reload_conf();
{% endif %}

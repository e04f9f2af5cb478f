{#- The parts of a subscription's connection string `s.subconninfo`, as one
    row: each key's value, quoted (key='value', \ and ' escaped, as fleetform
    writes them) or bare (key=value, as people often do); a port or sslmode
    left out is libpq's default; connect_timeout and application_name
    left out are NULL. Readable by superusers only: otherwise
    every part is NULL. -#}
{% if is_superuser %}
        SELECT {% for key, column in [("host", "host"), ("port", "port"), ("dbname", "dbname"), ("user", "username"), ("sslmode", "sslmode"), ("connect_timeout", "connect_timeout"), ("application_name", "application_name"), ("password", "password")] %}
               (SELECT coalesce(regexp_replace(m[1], '\\(.)', '\1', 'g'), m[2]{% if key == "port" %}, '5432'{% elif key == "sslmode" %}, 'prefer'{% endif %})
                FROM regexp_match(s.subconninfo, {{ "(?:^|\\s)" ~ key ~ "\\s*=\\s*(?:'((?:[^'\\\\]|\\\\.)*)'|([^\\s']+))" }}) m) AS {{ column|ident }}{% if not loop.last %},{% endif %}

               {% endfor %}
{% else %}
        SELECT NULL AS host, NULL AS port, NULL AS dbname, NULL AS username, NULL AS sslmode,
               NULL AS connect_timeout, NULL AS application_name, NULL AS password
{% endif %}

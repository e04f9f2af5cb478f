{# Restart a PostgreSQL instance on this machine: its service when the
   manifest names one, else pg_ctl on its data directory, run as the
   directory's owner (PostgreSQL refuses to run as root). pg_ctl restart keeps
   the options the server was started with; its log goes next to the server's
   own logs. #}
set -eu
{% if service_name %}
systemctl restart {{ service_name }}
{% else %}
data_directory={{ data_directory }}
major={{ server_version_num // 10000 }}
pg_ctl=
for candidate in "/usr/lib/postgresql/$major/bin/pg_ctl" "/usr/pgsql-$major/bin/pg_ctl" "$(command -v pg_ctl || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then pg_ctl=$candidate; break; fi
done
[ -n "$pg_ctl" ] || { echo "pg_ctl of PostgreSQL $major not found" >&2; exit 1; }
owner=$(stat -c %U "$data_directory")
set -- "$pg_ctl" -D "$data_directory" -l "$data_directory/log/pg_ctl-restart.log" -m fast -w -t 120 restart
if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
    runuser -u "$owner" -- mkdir -p "$data_directory/log"
    runuser -u "$owner" -- "$@"
else
    mkdir -p "$data_directory/log"
    "$@"
fi
{% endif %}

{# Run at the start of each of fleetform's sessions. #}
SET TimeZone = 'UTC';
SET statement_timeout = {{ statement_timeout_ms }};
SET lock_timeout = {{ lock_timeout_ms }};

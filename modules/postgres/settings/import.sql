{# The parameters set with ALTER SYSTEM (postgresql.auto.conf), as one
   PostgresSettings object; the rest of the configuration is not fleetform's. #}
WITH latest AS (
    SELECT DISTINCT ON (fs.name) fs.name, fs.setting
    FROM pg_file_settings fs
    WHERE fs.sourcefile LIKE '%postgresql.auto.conf'
    ORDER BY fs.name, fs.seqno DESC
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM latest)
            THEN json_build_array(json_build_object('name', 'settings', 'spec', json_build_object(
                     'parameters', (SELECT json_object_agg(name, setting ORDER BY name) FROM latest))))
            ELSE '[]'::json END

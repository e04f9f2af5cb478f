{# Every stamp of the table the test created. #}
SELECT coalesce(json_agg(json_build_object('identity', name, 'content', content) ORDER BY name), '[]'::json)
FROM public.toy_stamp

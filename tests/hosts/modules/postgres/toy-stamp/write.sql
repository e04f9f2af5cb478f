{# Create or rewrite the row. #}
INSERT INTO public.toy_stamp (name, content)
VALUES ({{ name }}, {{ desired.content }})
ON CONFLICT (name) DO UPDATE SET content = excluded.content;

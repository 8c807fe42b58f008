-- Search under row-level security. `@@` (ts_match_vq) and `<%` (word_similarity_op) are not
-- LEAKPROOF, so under the tenant role's policies the planner may not use them as index
-- conditions: a tenant's search read every row of the tenant. These functions find the
-- candidates as the owner role, with the GIN indexes, bounded to the transaction's tenant
-- (app_current_tenant(), set by app_enter_tenant; unset → no rows). The caller re-checks the
-- match on the rows it reads under RLS, so they only ever narrow, never widen, what it sees.
CREATE FUNCTION quire_search_matches(p_query tsquery) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT p.id FROM posts p WHERE p.tenant_id = app_current_tenant() AND p.search_vector @@ p_query
$$;--> statement-breakpoint
CREATE FUNCTION quire_search_similar_titles(p_words text) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT p.id FROM posts p WHERE p.tenant_id = app_current_tenant() AND p_words <% p.title
$$;--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION quire_search_matches(tsquery), quire_search_similar_titles(text) FROM PUBLIC;--> statement-breakpoint
GRANT EXECUTE ON FUNCTION quire_search_matches(tsquery), quire_search_similar_titles(text) TO quire_app;
--> statement-breakpoint

-- Author slugs transliterate accented Latin letters as post and tag slugs do ("José Núñez" →
-- jose-nunez, not jos-n-ez); the rest is as in 0007.
CREATE OR REPLACE FUNCTION quire_member_slug(p_tenant uuid, p_user uuid) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  base text;
  candidate text;
  n int := 1;
BEGIN
  SELECT trim(both '-' from regexp_replace(
           replace(replace(replace(translate(lower(u.name),
             'àáâãäåāăąçćčďđèéêëēėęěğìíîïīįıłñńňòóôõöøōőŕřśšşťùúûüūůűųýÿžźż', 'aaaaaaaaacccddeeeeeeeegiiiiiiilnnnoooooooorrssstuuuuuuuuyyzzz'), 'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'),
           '[^a-z0-9]+', '-', 'g')) INTO base
    FROM users u WHERE u.id = p_user;
  base := left(coalesce(nullif(base, ''), 'author'), 60);
  PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant::text || '/author/' || base, 0));
  candidate := base;
  WHILE EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = p_tenant AND m.slug = candidate) LOOP
    n := n + 1;
    candidate := base || '-' || n;
  END LOOP;
  RETURN candidate;
END $$;
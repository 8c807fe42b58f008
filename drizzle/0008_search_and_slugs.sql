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
END $$;--> statement-breakpoint

-- A member who leaves hands over their authorship, as Ghost hands a removed staff user's posts to
-- the owner: posts they wrote with others keep the others (the next becomes primary); posts they
-- wrote alone go to the tenant's first owner. Every path that removes a member is covered, and
-- a post's authorId stays its first author. SECURITY DEFINER: the remover's role may not see
-- every row this touches under RLS (the owner role's policies allow all).
CREATE FUNCTION quire_memberships_hand_over_posts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  heir uuid;
BEGIN
  SELECT m.user_id INTO heir FROM memberships m
   WHERE m.tenant_id = OLD.tenant_id AND m.role = 'owner'
   ORDER BY m.created_at, m.user_id LIMIT 1;
  IF heir IS NOT NULL THEN
    INSERT INTO post_authors (tenant_id, post_id, user_id, sort_order)
      SELECT pa.tenant_id, pa.post_id, heir, pa.sort_order FROM post_authors pa
       WHERE pa.tenant_id = OLD.tenant_id AND pa.user_id = OLD.user_id
         AND NOT EXISTS (SELECT 1 FROM post_authors o
                          WHERE o.tenant_id = pa.tenant_id AND o.post_id = pa.post_id AND o.user_id <> OLD.user_id)
      ON CONFLICT DO NOTHING;
  END IF;
  DELETE FROM post_authors pa
   WHERE pa.tenant_id = OLD.tenant_id AND pa.user_id = OLD.user_id
     AND EXISTS (SELECT 1 FROM post_authors o
                  WHERE o.tenant_id = pa.tenant_id AND o.post_id = pa.post_id AND o.user_id <> OLD.user_id);
  UPDATE posts p
     SET author_id = (SELECT pa.user_id FROM post_authors pa
                       WHERE pa.tenant_id = p.tenant_id AND pa.post_id = p.id
                       ORDER BY pa.sort_order, pa.user_id LIMIT 1)
   WHERE p.tenant_id = OLD.tenant_id
     AND EXISTS (SELECT 1 FROM post_authors pa WHERE pa.tenant_id = p.tenant_id AND pa.post_id = p.id)
     AND p.author_id IS DISTINCT FROM (SELECT pa.user_id FROM post_authors pa
                                       WHERE pa.tenant_id = p.tenant_id AND pa.post_id = p.id
                                       ORDER BY pa.sort_order, pa.user_id LIMIT 1);
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER memberships_hand_over_posts AFTER DELETE ON memberships
  FOR EACH ROW EXECUTE FUNCTION quire_memberships_hand_over_posts();
--> statement-breakpoint

-- A tenant that never set its language is English everywhere: the Content API's settings say
-- `en`, so search stems English too (0007 fell back to `simple`). Its documents are recomputed.
CREATE OR REPLACE FUNCTION quire_search_config(p_lang text) RETURNS regconfig LANGUAGE sql IMMUTABLE AS $$
  SELECT (CASE lower(split_part(split_part(coalesce(nullif(p_lang, ''), 'en'), '-', 1), '_', 1))
    WHEN 'en' THEN 'english' WHEN 'de' THEN 'german' WHEN 'fr' THEN 'french'
    WHEN 'es' THEN 'spanish' WHEN 'it' THEN 'italian' WHEN 'pt' THEN 'portuguese'
    WHEN 'nl' THEN 'dutch' WHEN 'sv' THEN 'swedish' WHEN 'da' THEN 'danish'
    WHEN 'nb' THEN 'norwegian' WHEN 'nn' THEN 'norwegian' WHEN 'no' THEN 'norwegian'
    WHEN 'fi' THEN 'finnish' WHEN 'ru' THEN 'russian' WHEN 'tr' THEN 'turkish'
    WHEN 'hu' THEN 'hungarian' WHEN 'ro' THEN 'romanian' WHEN 'ga' THEN 'irish'
    WHEN 'el' THEN 'greek' WHEN 'id' THEN 'indonesian' WHEN 'lt' THEN 'lithuanian'
    WHEN 'ne' THEN 'nepali' WHEN 'ar' THEN 'arabic' WHEN 'hy' THEN 'armenian'
    WHEN 'eu' THEN 'basque' WHEN 'ca' THEN 'catalan' WHEN 'hi' THEN 'hindi'
    WHEN 'sr' THEN 'serbian' WHEN 'ta' THEN 'tamil' WHEN 'yi' THEN 'yiddish'
    ELSE 'simple' END)::regconfig
$$;--> statement-breakpoint
UPDATE posts p
   SET search_vector = quire_post_search_document(p.tenant_id, p.id, p.title, p.excerpt, p.plaintext)
  FROM tenants t
 WHERE t.id = p.tenant_id AND coalesce(t.settings->>'lang', '') = '';

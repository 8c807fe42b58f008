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

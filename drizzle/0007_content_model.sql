CREATE TABLE "post_authors" (
	"tenant_id" uuid NOT NULL,
	"post_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"sort_order" integer NOT NULL,
	CONSTRAINT "post_authors_pkey" PRIMARY KEY("tenant_id","post_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "post_revisions" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"post_id" uuid NOT NULL,
	"post_version" integer NOT NULL,
	"reason" text NOT NULL,
	"title" text NOT NULL,
	"snapshot" jsonb NOT NULL,
	"created_by" uuid,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "post_revisions_pkey" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
DROP INDEX "posts_tenant_created_idx";--> statement-breakpoint
DROP INDEX "posts_tenant_status_created_idx";--> statement-breakpoint
DROP INDEX "posts_tenant_published_idx";--> statement-breakpoint
DROP INDEX "posts_tenant_status_published_idx";--> statement-breakpoint
-- Status from enum to text (see the schema: text equality is leakproof, enum equality is not).
ALTER TABLE "posts" ALTER COLUMN "status" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "posts" ALTER COLUMN "status" SET DATA TYPE text USING "status"::text;--> statement-breakpoint
ALTER TABLE "posts" ALTER COLUMN "status" SET DEFAULT 'draft';--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "slug" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "bio" text;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "profile_image" text;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "cover_image" text;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "website" text;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "location" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "type" text DEFAULT 'post' NOT NULL;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "featured" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "feature_image" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "feature_image_alt" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "feature_image_caption" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "meta_title" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "meta_description" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "canonical_url" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "og_image" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "og_title" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "og_description" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "twitter_image" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "twitter_title" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "twitter_description" text;--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "search_vector" "tsvector";--> statement-breakpoint
ALTER TABLE "post_authors" ADD CONSTRAINT "post_authors_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "post_authors" ADD CONSTRAINT "post_authors_post_fk" FOREIGN KEY ("tenant_id","post_id") REFERENCES "public"."posts"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "post_revisions" ADD CONSTRAINT "post_revisions_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "post_revisions" ADD CONSTRAINT "post_revisions_post_fk" FOREIGN KEY ("tenant_id","post_id") REFERENCES "public"."posts"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "post_authors_tenant_user_idx" ON "post_authors" USING btree ("tenant_id","user_id");--> statement-breakpoint
CREATE INDEX "post_authors_user_id_idx" ON "post_authors" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "post_revisions_post_idx" ON "post_revisions" USING btree ("tenant_id","post_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "post_revisions_created_by_idx" ON "post_revisions" USING btree ("created_by");--> statement-breakpoint
-- Author slugs: from the user's name, lower-cased and hyphenated, numbered when taken in the
-- tenant. Filled on insert when the app gives none (every path that adds a member), and
-- backfilled here for the members that exist. SECURITY DEFINER: the new member's name may not
-- yet be visible to the tenant role.
CREATE FUNCTION quire_member_slug(p_tenant uuid, p_user uuid) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  base text;
  candidate text;
  n int := 1;
BEGIN
  SELECT trim(both '-' from regexp_replace(lower(u.name), '[^a-z0-9]+', '-', 'g')) INTO base
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
REVOKE EXECUTE ON FUNCTION quire_member_slug(uuid, uuid) FROM PUBLIC;--> statement-breakpoint
GRANT EXECUTE ON FUNCTION quire_member_slug(uuid, uuid) TO quire_app;--> statement-breakpoint
CREATE FUNCTION quire_memberships_fill_slug() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.slug IS NULL OR NEW.slug = '' THEN
    NEW.slug := quire_member_slug(NEW.tenant_id, NEW.user_id);
  END IF;
  RETURN NEW;
END $$;--> statement-breakpoint
CREATE TRIGGER memberships_fill_slug BEFORE INSERT ON memberships
  FOR EACH ROW EXECUTE FUNCTION quire_memberships_fill_slug();--> statement-breakpoint
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tenant_id, user_id FROM memberships WHERE slug IS NULL OR slug = '' ORDER BY created_at LOOP
    UPDATE memberships SET slug = quire_member_slug(r.tenant_id, r.user_id)
     WHERE tenant_id = r.tenant_id AND user_id = r.user_id;
  END LOOP;
END $$;--> statement-breakpoint
CREATE UNIQUE INDEX "memberships_tenant_slug_key" ON "memberships" USING btree ("tenant_id","slug");--> statement-breakpoint
CREATE INDEX "posts_tenant_type_created_idx" ON "posts" USING btree ("tenant_id","type","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "posts_tenant_type_status_created_idx" ON "posts" USING btree ("tenant_id","type","status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "posts_tenant_type_published_idx" ON "posts" USING btree ("tenant_id","type","published_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "posts_tenant_type_status_published_idx" ON "posts" USING btree ("tenant_id","type","status","published_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "posts_scheduled_due_idx" ON "posts" USING btree ("published_at") WHERE status = 'scheduled';--> statement-breakpoint
CREATE INDEX "posts_search_idx" ON "posts" USING gin ("search_vector");--> statement-breakpoint
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX "posts_title_trgm_idx" ON "posts" USING gin ("title" gin_trgm_ops);--> statement-breakpoint
ALTER TABLE "posts" ADD CONSTRAINT "posts_type_check" CHECK ("posts"."type" in ('post', 'page'));--> statement-breakpoint
ALTER TABLE "posts" ADD CONSTRAINT "posts_status_check" CHECK ("posts"."status" in ('draft', 'scheduled', 'published', 'archived'));--> statement-breakpoint
DROP TYPE "public"."post_status";--> statement-breakpoint

-- Every existing post gets its creator as its only author.
INSERT INTO post_authors (tenant_id, post_id, user_id, sort_order)
  SELECT tenant_id, id, author_id, 0 FROM posts;--> statement-breakpoint

-- Tenant-owned like posts: the same two walls (see 0001_row_level_security.sql).
GRANT SELECT, INSERT, UPDATE, DELETE ON post_authors, post_revisions TO quire_app;--> statement-breakpoint
ALTER TABLE post_authors ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE post_authors FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY post_authors_owner_all ON post_authors TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY post_authors_isolation ON post_authors TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint
ALTER TABLE post_revisions ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE post_revisions FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY post_revisions_owner_all ON post_revisions TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY post_revisions_isolation ON post_revisions TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint

-- Full-text search. The document is weighted title (A) > custom excerpt and public tag names (B)
-- > body (C), in the text search configuration of the tenant's language (settings.lang), and is
-- kept current by triggers in the transaction of every write that changes it: the post's own
-- text, its tags, a tag's name or visibility, the tenant's language.
CREATE FUNCTION quire_search_config(p_lang text) RETURNS regconfig LANGUAGE sql IMMUTABLE AS $$
  SELECT (CASE lower(split_part(split_part(coalesce(p_lang, ''), '-', 1), '_', 1))
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
CREATE FUNCTION quire_tenant_search_config(p_tenant uuid) RETURNS regconfig LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT quire_search_config(t.settings->>'lang') FROM tenants t WHERE t.id = p_tenant),
                  'simple'::regconfig)
$$;--> statement-breakpoint
CREATE FUNCTION quire_post_search_document(p_tenant uuid, p_post uuid, p_title text, p_excerpt text, p_plaintext text)
RETURNS tsvector LANGUAGE plpgsql STABLE AS $$
DECLARE
  cfg regconfig := quire_tenant_search_config(p_tenant);
  tag_names text;
BEGIN
  SELECT string_agg(t.name, ' ') INTO tag_names
    FROM post_tags pt JOIN tags t ON t.tenant_id = pt.tenant_id AND t.id = pt.tag_id
   WHERE pt.tenant_id = p_tenant AND pt.post_id = p_post AND t.visibility = 'public';
  RETURN setweight(to_tsvector(cfg, coalesce(p_title, '')), 'A')
      || setweight(to_tsvector(cfg, coalesce(p_excerpt, '') || ' ' || coalesce(tag_names, '')), 'B')
      || setweight(to_tsvector(cfg, left(coalesce(p_plaintext, ''), 200000)), 'C');
END $$;--> statement-breakpoint
GRANT EXECUTE ON FUNCTION quire_search_config(text), quire_tenant_search_config(uuid),
  quire_post_search_document(uuid, uuid, text, text, text) TO quire_app;--> statement-breakpoint

CREATE FUNCTION quire_posts_search_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_vector := quire_post_search_document(NEW.tenant_id, NEW.id, NEW.title, NEW.excerpt, NEW.plaintext);
  RETURN NEW;
END $$;--> statement-breakpoint
CREATE TRIGGER posts_search_document BEFORE INSERT OR UPDATE OF title, excerpt, plaintext ON posts
  FOR EACH ROW EXECUTE FUNCTION quire_posts_search_row();--> statement-breakpoint

-- A post's tags changed (one statement per set of tags: statement-level, once per post).
CREATE FUNCTION quire_post_tags_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE posts p
     SET search_vector = quire_post_search_document(p.tenant_id, p.id, p.title, p.excerpt, p.plaintext)
    FROM (SELECT DISTINCT tenant_id, post_id FROM changed) c
   WHERE p.tenant_id = c.tenant_id AND p.id = c.post_id;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER post_tags_search_insert AFTER INSERT ON post_tags
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quire_post_tags_search();--> statement-breakpoint
CREATE TRIGGER post_tags_search_delete AFTER DELETE ON post_tags
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quire_post_tags_search();--> statement-breakpoint

-- A tag renamed or made internal/public: its posts' documents.
CREATE FUNCTION quire_tags_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE posts p
     SET search_vector = quire_post_search_document(p.tenant_id, p.id, p.title, p.excerpt, p.plaintext)
    FROM post_tags pt
   WHERE pt.tenant_id = NEW.tenant_id AND pt.tag_id = NEW.id
     AND p.tenant_id = pt.tenant_id AND p.id = pt.post_id;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER tags_search AFTER UPDATE OF name, visibility ON tags
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.visibility IS DISTINCT FROM NEW.visibility)
  EXECUTE FUNCTION quire_tags_search();--> statement-breakpoint

-- The tenant's language changed: every document of the tenant, in the new configuration.
CREATE FUNCTION quire_tenant_language_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE posts p
     SET search_vector = quire_post_search_document(p.tenant_id, p.id, p.title, p.excerpt, p.plaintext)
   WHERE p.tenant_id = NEW.id;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER tenants_language_search AFTER UPDATE OF settings ON tenants
  FOR EACH ROW WHEN (quire_search_config(OLD.settings->>'lang') IS DISTINCT FROM quire_search_config(NEW.settings->>'lang'))
  EXECUTE FUNCTION quire_tenant_language_search();--> statement-breakpoint

-- Documents for the posts that exist.
UPDATE posts SET search_vector = quire_post_search_document(tenant_id, id, title, excerpt, plaintext);

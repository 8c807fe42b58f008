CREATE TYPE "public"."tag_visibility" AS ENUM('public', 'internal');--> statement-breakpoint
CREATE TABLE "post_tags" (
	"tenant_id" uuid NOT NULL,
	"post_id" uuid NOT NULL,
	"tag_id" uuid NOT NULL,
	"sort_order" integer NOT NULL,
	CONSTRAINT "post_tags_pkey" PRIMARY KEY("tenant_id","post_id","tag_id")
);
--> statement-breakpoint
CREATE TABLE "tags" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"description" text,
	"visibility" "tag_visibility" DEFAULT 'public' NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tags_pkey" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "post_tags" ADD CONSTRAINT "post_tags_post_fk" FOREIGN KEY ("tenant_id","post_id") REFERENCES "public"."posts"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "post_tags" ADD CONSTRAINT "post_tags_tag_fk" FOREIGN KEY ("tenant_id","tag_id") REFERENCES "public"."tags"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tags" ADD CONSTRAINT "tags_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "post_tags_tenant_tag_idx" ON "post_tags" USING btree ("tenant_id","tag_id");--> statement-breakpoint
CREATE UNIQUE INDEX "tags_tenant_slug_key" ON "tags" USING btree ("tenant_id","slug");--> statement-breakpoint
-- Tenant-owned like posts: the same two walls (see 0001_row_level_security.sql).
GRANT SELECT, INSERT, UPDATE, DELETE ON tags, post_tags TO quire_app;--> statement-breakpoint
ALTER TABLE tags ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE tags FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY tags_owner_all ON tags TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY tags_isolation ON tags TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint
ALTER TABLE post_tags ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE post_tags FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY post_tags_owner_all ON post_tags TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY post_tags_isolation ON post_tags TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

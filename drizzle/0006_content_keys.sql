CREATE TABLE "content_keys" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"key_hash" text NOT NULL,
	"key_hint" text NOT NULL,
	"created_by" uuid,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp (3) with time zone,
	CONSTRAINT "content_keys_pkey" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "content_keys" ADD CONSTRAINT "content_keys_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "content_keys" ADD CONSTRAINT "content_keys_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "content_keys_key_hash_key" ON "content_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "content_keys_created_by_idx" ON "content_keys" USING btree ("created_by");--> statement-breakpoint
-- Managed under the tenant role; resolved from a key by the owner role (before any tenant is known).
GRANT SELECT, INSERT, DELETE ON content_keys TO quire_app;--> statement-breakpoint
ALTER TABLE content_keys ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE content_keys FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY content_keys_owner_all ON content_keys TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY content_keys_isolation ON content_keys TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
